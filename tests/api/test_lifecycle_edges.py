"""Run lifecycle requests that went wrong: two requests about one run at once (a cancel sent
while a decision is checked, a worker polling while a fork is made: each left the run doing
what no client asked for), a fork from the run's empty first checkpoint (a 400 naming no
field), and true/false where a generation or chat takes a number (read as 1 or 0). No workers
here: the worker's poll is made by hand at the racy moment."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import api.routes.interrupts as interrupts_route
import llmfinetune_agent.fork as fork_module
from api.main import create_app
from llmfinetune_agent.execution.worker_process import execute_run
from tests.api.conftest import small_config


@pytest.fixture
def waiting(settings):
    """A client and a run waiting at its plan gate, with that gate's id."""
    with TestClient(create_app(settings, workers=False)) as client:
        run_id = client.post("/runs", json=small_config("races")).json()["id"]
        assert client.app.state.service.start(run_id).status == "awaiting_approval"
        (gate,) = client.get(f"/runs/{run_id}/interrupts").json()["data"]
        yield client, run_id, gate["id"]


def test_a_cancel_sent_while_a_decision_is_checked_is_not_lost(waiting, monkeypatch) -> None:
    """The decision held the run's claim, so the cancel only logged a request and answered
    202 "cancel requested"; the run was then queued, and the worker that took it ignored a
    request older than itself: the cancelled run trained to the end."""
    client, run_id, gate = waiting
    cancels = []
    check = interrupts_route.check_decision

    def check_while_a_cancel_arrives(value, config, settings):
        cancels.append(client.post(f"/runs/{run_id}/cancel"))
        return check(value, config, settings)

    monkeypatch.setattr(interrupts_route, "check_decision", check_while_a_cancel_arrives)
    decided = client.post(f"/runs/{run_id}/interrupts/{gate}", json={"decision": "approve"})
    assert decided.status_code == 202, decided.text
    assert cancels[0].status_code == 202, cancels[0].text

    run = client.get(f"/runs/{run_id}").json()
    assert run["status"] == "cancelled", run
    assert run["decisions"][-1]["note"] == "accepted, not applied: the run was cancelled"
    # No worker will take it up: it is no longer queued.
    assert run_id not in client.app.state.service.store.recover_orphans(statuses=("queued",))


def test_a_worker_polling_during_a_fork_does_not_start_the_child_from_scratch(
    waiting, monkeypatch
) -> None:
    """The child was queued before its forked state was written: a worker polling then started
    it as a new run, and the fork's state landed on top of that run's checkpoints (left
    `awaiting_approval` at a gate its checkpoint no longer had: no decision could move it)."""
    client, run_id, _ = waiting
    service = client.app.state.service
    share = fork_module._share_artifacts
    polled = []

    def share_while_a_worker_polls(parent_dir, child_dir):
        share(parent_dir, child_dir)
        queue = service.store.recover_orphans(statuses=("queued", "running"))  # a pool's poll
        polled.append((child_dir.name, queue))
        for queued in queue:
            execute_run(service, queued)

    monkeypatch.setattr(fork_module, "_share_artifacts", share_while_a_worker_polls)
    latest = client.get(f"/runs/{run_id}/history").json()["data"][0]["checkpoint_id"]
    made = client.post(
        f"/runs/{run_id}/fork",
        json={"checkpoint_id": latest, "patch": {"training": {"learning_rate": 0.0001}}},
    )
    assert made.status_code == 202, made.text
    child = made.json()["id"]
    assert polled and polled[0][0] == child and child not in polled[0][1]

    assert client.get(f"/runs/{child}").json()["status"] == "queued"
    history = client.get(f"/runs/{child}/history").json()["data"]
    assert [c["source"] for c in history] == ["update"]  # only the fork's state, nothing ran
    kinds = [e.kind for e in service.store.list_events(run_id=child, after_seq=0)]
    assert kinds[0] == "forked"


def test_a_fork_from_the_runs_first_checkpoint_names_the_checkpoint_id(waiting) -> None:
    client, run_id, _ = waiting
    first = client.get(f"/runs/{run_id}/history").json()["data"][-1]  # written before it began
    assert first["source"] == "input"
    refused = client.post(f"/runs/{run_id}/fork", json={"checkpoint_id": first["checkpoint_id"]})
    assert refused.status_code == 422, refused.text
    (issue,) = refused.json()["detail"]
    assert issue["loc"] == ["body", "checkpoint_id"] and "holds no run state" in issue["msg"]
    assert client.get("/runs").json()["count"] == 1  # no child was made


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/models/abc/generate", {"prompt": "hi", "max_new_tokens": True}, "max_new_tokens"),
        ("/models/abc/generate", {"prompt": "hi", "temperature": True}, "temperature"),
        ("/models/abc/generate", {"prompt": "hi", "top_k": False}, "top_k"),
        ("/models/abc/generate", {"prompt": "hi", "seed": True}, "seed"),
        ("/chats", {"model": "builtin:tiny-llama", "max_new_tokens": True}, "max_new_tokens"),
        ("/chats", {"model": "builtin:tiny-llama", "max_iterations": True}, "max_iterations"),
    ],
)
def test_true_or_false_for_a_number_is_422_naming_the_field(settings, url, body, field) -> None:
    """`"max_new_tokens": true` answered with one token (pydantic reads true as 1), as run
    configs did before they refused it."""
    with TestClient(create_app(settings, workers=False)) as client:
        answer = client.post(url, json=body)
    assert answer.status_code == 422, answer.text
    (issue,) = answer.json()["detail"]
    assert issue["loc"] == ["body", field] and "expected a number" in issue["msg"]
