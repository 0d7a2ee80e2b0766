"""The OpenAPI document: every operation has a typed response with an example, and every
example validates against the model it illustrates (so the docs cannot drift from the code)."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

import api.routes.history as history
import api.schemas as schemas
from api.main import create_app

MODELS = [
    obj
    for module in (schemas, history)
    for obj in vars(module).values()
    if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__
]


@pytest.fixture
def spec(settings) -> dict:
    app = create_app(dataclasses.replace(settings, api_key="k"), workers=False)
    with TestClient(app) as client:
        response = client.get("/openapi.json", headers={"Authorization": "Bearer k"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_examples_validate_against_their_model(model: type[BaseModel]) -> None:
    examples = model.model_json_schema().get("examples", [])
    for example in examples:
        model.model_validate(example)


def test_every_operation_documents_a_response_with_an_example(spec: dict) -> None:
    components = spec["components"]["schemas"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            success = [v for k, v in operation["responses"].items() if k.startswith("2")]
            assert success, f"{method.upper()} {path} documents no success response"
            for content in success[0].get("content", {}).values():
                ref = content.get("schema", {}).get("$ref")
                examples = content.get("example") or content.get("examples")
                if ref:
                    examples = examples or components[ref.rsplit("/", 1)[1]].get("examples")
                if not examples:
                    missing.append(f"{method.upper()} {path}")
    assert not missing, f"responses without an example: {missing}"


def test_request_bodies_have_examples(spec: dict) -> None:
    components = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            ref = body["schema"].get("$ref", "")
            documented = body.get("examples") or components.get(ref.rsplit("/", 1)[-1], {}).get(
                "examples"
            )
            assert documented, f"{method.upper()} {path}: request body without an example"
