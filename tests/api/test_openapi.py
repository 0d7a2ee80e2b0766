"""The OpenAPI document: every operation has a typed response with an example, and every
example validates against the model it illustrates (so the docs cannot drift from the code)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

import api.chat_schemas as chat_schemas
import api.routes.history as history
import api.schemas as schemas
from api.main import create_app

MODELS = [
    obj
    for module in (schemas, history, chat_schemas)
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


def _examples(model: type[BaseModel]) -> list:
    return model.model_json_schema().get("examples", [])


def _nested(value: Any) -> Iterator[BaseModel]:
    """Every model instance inside `value` (itself included), through fields, lists and dicts."""
    if isinstance(value, BaseModel):
        yield value
        value = dict(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _nested(item)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_examples_that_validate(model: type[BaseModel]) -> None:
    """A model has examples of its own, or (an item such as `ArtifactPublic`) appears inside a
    validated example of another model; every example validates against its model."""
    examples = _examples(model)
    for example in examples:
        model.model_validate(example)
    if examples:
        return
    shown_in = [
        whole.__name__
        for whole in MODELS
        for example in _examples(whole)
        if any(isinstance(part, model) for part in _nested(whole.model_validate(example)))
    ]
    assert shown_in, f"{model.__name__} has no examples and appears in no other model's example"


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
