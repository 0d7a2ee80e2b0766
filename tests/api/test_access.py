"""Auth, confinement of data paths and artifact downloads, uploads, input validation."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import small_config


@pytest.fixture
def client(settings):
    """The API without workers: submitted runs stay queued."""
    with TestClient(create_app(settings, workers=False, upload_limit_bytes=1000)) as c:
        yield c


def test_api_key_is_required_except_for_healthz(settings) -> None:
    app = create_app(dataclasses.replace(settings, api_key="s3cret"), workers=False)
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        for path in ("/runs", "/models", "/runs/abc/events", "/openapi.json"):
            denied = c.get(path)
            assert denied.status_code == 401, path
            assert denied.headers["www-authenticate"] == "Bearer"
        assert c.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/runs", headers={"Authorization": "Basic s3cret"}).status_code == 401
        assert c.post("/runs", json=small_config()).status_code == 401
        key = {"Authorization": "Bearer s3cret"}
        ok = c.get("/runs", headers=key)
        assert ok.status_code == 200 and ok.json() == {"data": [], "count": 0}
        schema = c.get("/openapi.json", headers=key)
        assert schema.status_code == 200 and "/runs/{run_id}" in schema.json()["paths"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("train", "/etc/passwd"),
        ("train", "../../../../../../etc/passwd"),
        ("eval", "/etc/hostname"),
    ],
)
def test_data_paths_outside_the_roots_are_422(client, field: str, value: str) -> None:
    config = small_config()
    config["data"][field] = value
    response = client.post("/runs", json=config)
    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "data", field]
    assert "outside the data roots" in issue["msg"]
    assert client.get("/runs").json()["count"] == 0  # nothing was created


def test_a_reflection_model_outside_the_roots_is_422(client) -> None:
    config = small_config()
    config["training"] = {"method": "prompt", "reflection_model": "/etc"}
    response = client.post("/runs", json=config)
    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "training", "reflection_model"]
    assert "outside the data roots" in issue["msg"]
    assert client.get("/runs").json()["count"] == 0


def test_a_hub_or_builtin_reflection_model_is_accepted(client) -> None:
    for name in ("builtin:tiny-llama", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        config = small_config()
        config["training"] = {"method": "prompt", "reflection_model": name}
        assert client.post("/runs", json=config).status_code == 202, name


def test_symlink_out_of_a_root_is_422(client, settings, tmp_path) -> None:
    root = settings.data_roots[0]
    root.mkdir(parents=True, exist_ok=True)
    (root / "sneaky.jsonl").symlink_to("/etc/passwd")
    config = small_config()
    config["data"]["train"] = str(root / "sneaky.jsonl")
    assert client.post("/runs", json=config).status_code == 422


def test_invalid_config_names_the_field(client) -> None:
    config = small_config()
    config["training"]["learning_rate"] = "fast"
    response = client.post("/runs", json=config)
    assert response.status_code == 422
    assert any(d["loc"][-2:] == ["training", "learning_rate"] for d in response.json()["detail"])


def test_uploaded_data_can_be_used_by_a_run(client, settings) -> None:
    line = b'{"prompt": "a", "completion": "b"}\n'
    up = client.post("/data", params={"filename": "../x/train.jsonl"}, content=line * 3)
    assert up.status_code == 201
    path = up.json()["path"]
    assert path.startswith(str(settings.data_roots[0] / "uploads")) and path.endswith("train.jsonl")
    config = small_config()
    config["data"]["train"] = path
    assert client.post("/runs", json=config).status_code == 202
    too_big = client.post("/data", params={"filename": "big.jsonl"}, content=line * 100)
    assert too_big.status_code == 413
    assert len(list((settings.data_roots[0] / "uploads").iterdir())) == 1  # no partial file
    bad_type = client.post("/data", params={"filename": "run.sh"}, content=b"echo")
    assert bad_type.status_code == 422
    # A form (curl -F) was stored as the data file, boundaries and all; an empty body too.
    form = client.post("/data", params={"filename": "f.jsonl"}, files={"file": ("f.jsonl", line)})
    assert form.status_code == 415 and "--data-binary" in form.text
    empty = client.post("/data", params={"filename": "e.jsonl"}, content=b"")
    assert empty.status_code == 422 and "the body is empty" in empty.text
    assert len(list((settings.data_roots[0] / "uploads").iterdir())) == 1


def test_artifact_downloads_stay_in_the_run_directory(client) -> None:
    run_id = client.post("/runs", json=small_config()).json()["id"]
    listed = client.get(f"/runs/{run_id}/artifacts").json()
    assert [a["path"] for a in listed["data"]] == ["config.json"]
    config = client.get(f"/runs/{run_id}/artifacts/config.json")
    assert config.status_code == 200 and config.json()["name"] == "api-small"
    for path in ("../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"):
        assert client.get(f"/runs/{run_id}/artifacts/{path}").status_code == 404, path
    assert client.get(f"/runs/{run_id}/report").status_code == 404


def test_generation_input_is_validated(client) -> None:
    both = {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/models/abc/generate", json=both).status_code == 422
    assert client.post("/models/abc/generate", json={}).status_code == 422
    assert client.post("/models/abc/generate", json={"prompt": "hi"}).status_code == 404
    assert client.get("/models/abc").status_code == 404
