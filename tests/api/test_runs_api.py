"""Listing, cancelling (also right after a decision was accepted), unknown ids, and recovering a
run a crashed process left `running`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from fastapi.testclient import TestClient

from api.main import create_app
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from tests.api.conftest import small_config, wait_for_status


def test_list_filter_paginate_and_cancel(settings) -> None:
    with TestClient(create_app(settings, workers=False)) as client:
        ids = [client.post("/runs", json=small_config(f"r{i}")).json()["id"] for i in range(3)]
        page = client.get("/runs", params={"limit": 2}).json()
        assert page["count"] == 3 and [r["id"] for r in page["data"]] == ids[::-1][:2]
        rest = client.get("/runs", params={"limit": 2, "offset": 2}).json()
        assert [r["id"] for r in rest["data"]] == [ids[0]]

        cancelled = client.post(f"/runs/{ids[1]}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
        assert client.post(f"/runs/{ids[1]}/cancel").status_code == 409
        only = client.get("/runs", params={"status": "cancelled"}).json()
        assert only["count"] == 1 and only["data"][0]["id"] == ids[1]
        assert client.get("/runs", params={"status": "bogus"}).status_code == 422

        for path in ("/runs/nope", "/runs/nope/interrupts", "/runs/nope/events"):
            assert client.get(path).status_code == 404, path
        assert client.post("/runs/nope/cancel").status_code == 404
        assert (
            client.post("/runs/nope/interrupts/x", json={"decision": "approve"}).status_code == 404
        )
        # A run that never raised that interrupt: 404, not 409.
        answer = client.post(f"/runs/{ids[0]}/interrupts/{'0' * 32}", json={"decision": "approve"})
        assert answer.status_code == 404


def test_a_decision_accepted_then_cancelled_is_listed_with_the_cancelled_run(settings) -> None:
    """A 202 answer, through our API or LangGraph's, then a 202 cancel before any worker
    resumed the gate: `GET /runs/{id}` lists the decision (not applied) on the cancelled run."""
    answers = {
        "edit": ("interrupts", {"decision": "edit", "edits": {"training": {"max_steps": 2}}}),
        "approve": ("threads", {"decisions": [{"type": "approve"}]}),
        "reject": ("interrupts", {"decision": "reject", "comment": "wrong data"}),
    }
    with TestClient(create_app(settings, workers=False)) as client:
        service = client.app.state.service
        for decision, (route, answer) in answers.items():
            run_id = client.post("/runs", json=small_config(decision)).json()["id"]
            assert service.start(run_id).status == "awaiting_approval"
            gate = client.get(f"/runs/{run_id}/interrupts").json()["data"][0]["id"]
            if route == "threads":
                body = {"command": {"resume": answer}}
                accepted = client.post(f"/threads/{run_id}/runs", json=body)
                assert accepted.status_code == 200, accepted.text
            else:
                accepted = client.post(f"/runs/{run_id}/interrupts/{gate}", json=answer)
                assert accepted.status_code == 202, accepted.text
            cancelled = client.post(f"/runs/{run_id}/cancel")
            assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"

            run = client.get(f"/runs/{run_id}").json()
            assert run["status"] == "cancelled"
            assert [
                (d["gate"], d["decision"], d["patch"], d["comment"], d["applied"], d["note"])
                for d in run["decisions"]
            ] == [
                (
                    "approve_plan",
                    decision,
                    answer.get("edits"),
                    answer.get("comment", ""),
                    False,
                    "accepted, not applied: the run was cancelled",
                )
            ]


def test_listing_shows_a_change_made_by_another_process_at_once(settings) -> None:
    """`GET /runs` pages are cached, keyed by the store's runs_version: a write through another
    process (another service, a CLI) is visible on the next request."""
    with TestClient(create_app(settings, workers=False)) as client:
        run_id = client.post("/runs", json=small_config()).json()["id"]
        assert client.get("/runs").json()["data"][0]["status"] == "queued"
        assert client.get("/runs").json()["data"][0]["status"] == "queued"  # from the cache
        script = (
            "import sys; from llmfinetune_agent.run_store import RunStore; "
            "RunStore(sys.argv[1]).update_run(run_id=sys.argv[2], status='cancelled', "
            "error='cancelled elsewhere')"
        )
        subprocess.run(
            [sys.executable, "-c", script, settings.database_url, run_id], check=True, timeout=120
        )
        listed = client.get("/runs").json()["data"][0]
        assert listed["status"] == "cancelled" and listed["error"] == "cancelled elsewhere"
        assert client.get("/runs", params={"status": "queued"}).json()["count"] == 0


def test_a_crash_left_running_run_is_recovered_at_start_up(settings) -> None:
    config = small_config()
    # Long training and no gate after the plan: the run is surely training when cancelled.
    config["training"].update(max_steps=1000, save_steps=1000)
    config["hitl"].update(approve_data=False, training_checkpoints=[])
    with open_service(settings) as service:
        run = service.create_run(parse_run_config(config))
        dead = subprocess.Popen(["true"])  # a pid that no longer exists once waited for
        dead.wait()
        owner = f"{socket.gethostname()}:{dead.pid}:crashed"
        assert service.store.claim_run(run_id=run.id, owner=owner)  # lease still valid
        assert service.store.get_run(run_id=run.id).status == "running"

    with TestClient(create_app(settings)) as client:
        waiting = wait_for_status(client, run.id, ("awaiting_approval", "failed"))
        assert waiting["status"] == "awaiting_approval", waiting["error"]
        assert waiting["pending_interrupt"]["kind"] == "approve_plan"

        # Approve, then cancel while it trains: the trainer stops within a few steps.
        interrupt_id = waiting["pending_interrupt"]["id"]
        approved = client.post(
            f"/runs/{run.id}/interrupts/{interrupt_id}", json={"decision": "approve"}
        )
        assert approved.status_code == 202
        deadline = time.monotonic() + 120
        while not (client.get(f"/runs/{run.id}").json()["training"] or {}).get("global_step"):
            assert time.monotonic() < deadline, "the run never started training"
            time.sleep(0.1)
        asked = client.post(f"/runs/{run.id}/cancel")
        assert asked.status_code == 202
        assert asked.json()["status"] == "running" and "cancel requested" in asked.json()["message"]
        ended = wait_for_status(client, run.id, ("cancelled", "failed", "completed"))
        assert ended["status"] == "cancelled", ended["error"]
        assert ended["training"]["status"] == "cancelled"
        assert ended["training"]["global_step"] < ended["training"]["total_steps"] // 4
        time.sleep(1.5)  # and it stays so: no worker picks it up again
        assert client.get(f"/runs/{run.id}").json()["status"] == "cancelled"
