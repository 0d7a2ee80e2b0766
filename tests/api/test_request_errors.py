"""What the API says about bad input: README's data root, unknown config keys, invalid edits,
and a gate that is no longer listed once its decision is accepted."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import REPO, small_config


def _client(settings, roots) -> TestClient:
    return TestClient(create_app(dataclasses.replace(settings, data_roots=roots), workers=False))


def test_readme_data_root_reads_the_quickstart_config_as_written(settings) -> None:
    """README: FINETUNE_AGENT_DATA_ROOTS=$PWD/configs, then POST -d @configs/quickstart.json."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    with _client(settings, [REPO / "configs"]) as client:
        created = client.post("/runs", json=config)
        assert created.status_code == 202, created.text
        run = client.get(f"/runs/{created.json()['id']}").json()
    train = REPO / "configs" / "data" / "quickstart" / "train.jsonl"
    artifact = json.loads((settings.runs_dir / run["id"] / "config.json").read_text())
    assert artifact["data"]["train"] == str(train)


def test_a_relative_path_is_read_from_the_root_that_has_it(settings, tmp_path) -> None:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    with _client(settings, [tmp_path, REPO / "configs"]) as client:
        assert client.post("/runs", json=config).status_code == 202


def test_a_nul_byte_in_a_path_is_a_422_naming_the_field(settings) -> None:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = "data/\x00train.jsonl"
    with _client(settings, [REPO / "configs"]) as client:
        answer = client.post("/runs", json=config)
        assert answer.status_code == 422, answer.text
        (issue,) = answer.json()["detail"]
        assert issue["loc"] == ["body", "data", "train"] and "NUL byte" in issue["msg"]
        assert client.get("/runs").status_code == 200  # the server goes on answering


def test_a_missing_relative_path_names_where_it_was_looked_for(settings) -> None:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    root = REPO / "configs" / "data"  # the old README's root: one level too deep
    with _client(settings, [root]) as client:
        response = client.post("/runs", json=config)
        assert client.get("/runs").json()["count"] == 0
    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "data", "train"]
    assert str(root / "data" / "quickstart" / "train.jsonl") in issue["msg"]
    assert f"data root {root}" in issue["msg"]
    assert "FINETUNE_AGENT_DATA_ROOTS" in issue["hint"]


def test_a_relative_path_cannot_climb_out_of_its_root(settings, tmp_path) -> None:
    config = small_config()
    config["data"]["train"] = "../../../../../../../../etc/hostname"
    with _client(settings, [tmp_path]) as client:
        response = client.post("/runs", json=config)
    assert response.status_code == 422
    assert "outside the data roots" in response.json()["detail"][0]["msg"]


def test_an_unknown_config_key_gets_did_you_mean(settings) -> None:
    config = small_config()
    config["training"]["lerning_rate"] = 0.1
    with _client(settings, settings.data_roots) as client:
        response = client.post("/runs", json=config)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "training", "lerning_rate"],
            "msg": "unknown key 'lerning_rate'",
            "type": "config",
            "hint": "did you mean 'learning_rate'?",
        }
    ]


def test_a_body_that_is_not_json_keeps_fastapis_error(settings) -> None:
    with _client(settings, settings.data_roots) as client:
        response = client.post(
            "/runs", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.fixture
def waiting_run(settings):
    """A client and a run waiting at `approve_plan`, with no worker to take a decision away."""
    with _client(settings, settings.data_roots) as client:
        run_id = client.post("/runs", json=small_config()).json()["id"]
        record = client.app.state.service.start(run_id)
        assert record.status == "awaiting_approval"
        (gate,) = client.get(f"/runs/{run_id}/interrupts").json()["data"]
        yield client, run_id, gate


def test_edit_errors_point_at_the_field_and_an_answered_gate_is_gone(waiting_run) -> None:
    client, run_id, gate = waiting_run
    url = f"/runs/{run_id}/interrupts/{gate['id']}"
    typo = client.post(url, json={"decision": "edit", "edits": {"training": {"lerning_rate": 1}}})
    assert typo.status_code == 422
    (issue,) = typo.json()["detail"]
    assert issue["loc"] == ["body", "edits", "training", "lerning_rate"]
    assert issue["hint"] == "did you mean 'learning_rate'?"
    bad = client.post(url, json={"decision": "edit", "edits": {"training": {"learning_rate": "x"}}})
    assert bad.status_code == 422
    assert [d["loc"] for d in bad.json()["detail"]] == [
        ["body", "edits", "training", "learning_rate"]
    ]
    escape = client.post(
        url, json={"decision": "edit", "edits": {"data": {"train": "/etc/passwd"}}}
    )
    assert escape.status_code == 422
    assert [d["loc"] for d in escape.json()["detail"]] == [["body", "edits", "data", "train"]]
    assert client.get(f"/runs/{run_id}/interrupts").json()["count"] == 1  # still waiting

    assert client.post(url, json={"decision": "approve"}).status_code == 202
    # No worker runs here, so the checkpoint still holds the gate: the listing must not.
    assert client.get(f"/runs/{run_id}/interrupts").json() == {"data": [], "count": 0}
    run = client.get(f"/runs/{run_id}").json()
    assert run["status"] == "queued" and run["pending_interrupt"] is None
    assert client.get("/runs").json()["data"][0]["pending_interrupt"] is None
    assert client.post(url, json={"decision": "approve"}).status_code == 409


def test_a_long_message_of_ours_is_kept_and_a_huge_one_bounded() -> None:
    """Messages were cut at 200 characters, like inputs: one naming two absolute paths lost its
    end (the test that checks one failed only where pytest's temp paths were long)."""
    from api.error_excerpts import MESSAGE_CHARS, bounded_errors

    ours = "prompt artifact /" + "a" * 150 + ": its 'model' '/" + "b" * 150 + "' is outside"
    huge = "x" * 50_000
    kept, cut = bounded_errors([{"loc": ["body"], "msg": ours}, {"loc": ["body"], "msg": huge}])
    assert kept["msg"] == ours
    assert cut["msg"] == "x" * MESSAGE_CHARS + "... (50000 characters)"
