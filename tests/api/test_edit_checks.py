"""An edit, a fork patch and the dashboard's "checked as typed" preview give one verdict: a
method the run's prepared data cannot feed, a model folder without config.json, a relative path
found nowhere and a path outside the data roots are refused (422, or errors on the card), each
named by its place in the request; nothing trains (no workers)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from tests.api.conftest import small_config

DPO = {"training": {"method": "dpo"}}


@pytest.fixture
def at_data_gate(settings) -> tuple[TestClient, str, str]:
    """A test client, and a run (chat data, checked) waiting at its approve_data gate with the
    id of that gate."""
    config = small_config("edit-checks")
    config["hitl"].update(approve_plan=False)
    with open_service(settings) as service:
        run = service.create_run(parse_run_config(config))
        assert service.start(run.id).status == "awaiting_approval"
        gate = service.pending_interrupts(run.id)[0]
        assert gate["kind"] == "approve_data"
        assert service.state_values(run.id)["data"]["kind"] == "chat"
    with TestClient(create_app(settings, workers=False)) as client:
        yield client, run.id, gate["id"]


def _no_config_model(settings) -> Path:
    folder = settings.home / "data" / "half-copied-model"  # under a data root, no config.json
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    return folder


def test_a_fork_patch_is_checked_as_a_gate_edit_is(at_data_gate, settings) -> None:
    client, run_id, _ = at_data_gate
    latest = client.get(f"/runs/{run_id}/history").json()["data"][0]["checkpoint_id"]
    url = f"/runs/{run_id}/fork"

    def fork(patch: dict) -> dict:
        response = client.post(url, json={"checkpoint_id": latest, "patch": patch})
        assert response.status_code == 422, response.text
        return response.json()["detail"][0]

    method = fork(DPO)["msg"]
    assert "the patch's training.method 'dpo' cannot learn from this run's 'chat' data" in method
    model = fork({"model": {"name_or_path": str(_no_config_model(settings))}})["msg"]
    assert model.startswith("the patch's model:") and "has no config.json" in model

    outside = fork({"data": {"train": "/etc/passwd"}})
    assert outside["loc"] == ["body", "patch", "data", "train"]
    assert "outside the data roots" in outside["msg"]
    relative = fork({"data": {"eval": "nope.jsonl"}})
    assert relative["loc"] == ["body", "patch", "data", "eval"]
    looked = settings.home / "data" / "nope.jsonl"  # where POST /runs looks first, and says so
    assert relative["msg"].startswith(f"'nope.jsonl' not found: looked for '{looked}' (data root")
    typo = fork({"training": {"epochs": -1}})
    assert typo["loc"] == ["body", "patch", "training", "epochs"]

    # Switching the method with data it can learn from is a fork like any other.
    pairs = str(settings.data_roots[1] / "preference" / "pairs.jsonl")
    made = client.post(
        url,
        json={"checkpoint_id": latest, "patch": {**DPO, "data": {"train": pairs}}},
    )
    assert made.status_code == 202, made.text
    assert client.get(f"/runs/{run_id}").json()["status"] == "awaiting_approval"


def test_a_relative_path_in_an_edit_is_looked_for_as_in_a_new_run(at_data_gate) -> None:
    client, run_id, gate = at_data_gate
    edit = {"decision": "edit", "edits": {"data": {"eval": "nope.jsonl"}}}
    refused = client.post(f"/runs/{run_id}/interrupts/{gate}", json=edit)
    assert refused.status_code == 422
    msg = refused.json()["detail"][0]["msg"]
    assert msg.startswith("'nope.jsonl' not found: looked for '") and "(data root " in msg
    existing = {"data": {"eval": "quickstart/train.jsonl"}}  # there, but not read from a root
    refused = client.post(
        f"/runs/{run_id}/interrupts/{gate}", json={"decision": "edit", "edits": existing}
    )
    assert refused.status_code == 422
    assert "give its absolute path" in refused.json()["detail"][0]["hint"]


def test_the_dashboard_check_gives_the_decisions_verdict(at_data_gate, settings) -> None:
    client, run_id, gate = at_data_gate
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/ui/inbox").text)
    write = {"X-CSRF-Token": token.group(1)}
    no_config = {"model": {"name_or_path": str(_no_config_model(settings))}}
    for edits, refusal in (
        (DPO, "cannot learn from this run's 'chat' data"),
        (no_config, "has no config.json"),
    ):
        decided = client.post(
            f"/runs/{run_id}/interrupts/{gate}", json={"decision": "edit", "edits": edits}
        )
        assert decided.status_code == 422 and refusal in decided.text
        checked = client.post(
            f"/ui/runs/{run_id}/gates/{gate}/check",
            data={"edits": json.dumps(edits)},
            headers=write,
        )
        shown = html.unescape(checked.text)
        assert refusal in shown and "Valid" not in shown
    fine = client.post(
        f"/ui/runs/{run_id}/gates/{gate}/check",
        data={"edits": '{"training": {"epochs": 2}}'},
        headers=write,
    )
    assert "Valid: training.epochs would change." in fine.text
    assert client.get(f"/runs/{run_id}").json()["status"] == "awaiting_approval"


def test_a_reject_with_a_selection_and_a_boolean_index_are_refused(at_data_gate) -> None:
    """`{"decision": "reject", "select": [1]}` was accepted with the selection dropped (the CLI
    refused it), and `select: [true]` was read as index 1."""
    client, run_id, gate = at_data_gate
    reject = client.post(
        f"/runs/{run_id}/interrupts/{gate}", json={"decision": "reject", "select": [1]}
    )
    assert reject.status_code == 422 and "not 'reject'" in reject.text
    boolean = client.post(
        f"/runs/{run_id}/interrupts/{gate}", json={"decision": "approve", "select": [True]}
    )
    assert boolean.status_code == 422
    assert boolean.json()["detail"][0]["loc"] == ["body", "select", 0]
