"""How the CLI (and the API) speak about runs that stopped: `resume` on an ended run says how it
ended, and a run whose process was killed shows as interrupted, with the command to resume it.
A decision meets only the gate it was meant for: not a run that waits at no gate, not another
gate than `--gate` names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from llmfinetune_agent.cli import app
from llmfinetune_agent.cli.exit_codes import BAD_INPUT, CANCELLED, FAILED, OK
from llmfinetune_agent.config import load_run_config
from llmfinetune_agent.execution import RunEnded, open_service
from llmfinetune_agent.run_store import make_owner

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _run_with_status(status: str, **fields: Any) -> str:
    """A run of the quickstart config that has reached `status` (as its executor leaves it)."""
    with open_service() as service:
        run = service.create_run(load_run_config(REPO / "configs" / "quickstart-tiny.json"))
        owner = make_owner()
        assert service.store.claim_run(run_id=run.id, owner=owner)
        service.store.release_run(run_id=run.id, owner=owner, status=status, **fields)
        return run.id


@pytest.mark.parametrize(
    ("status", "fields", "code", "said"),
    [
        ("completed", {"model_path": "/m/final"}, OK, "it completed"),
        ("cancelled", {"error": "rejected at approve_fixes"}, CANCELLED, "it was cancelled"),
        # The code `run` exited with: 2 for bad input, 1 for anything else.
        ("failed", {"error": "bad input: no rows"}, BAD_INPUT, "it failed (bad input: no rows)"),
        ("failed", {"error": "OSError: disk full"}, FAILED, "it failed (OSError: disk full)"),
    ],
)
def test_resume_on_an_ended_run_says_how_it_ended(
    status: str, fields: dict[str, Any], code: int, said: str
) -> None:
    run_id = _run_with_status(status, **fields)
    result = cli("resume", run_id)
    assert result.exit_code == code, result.output
    assert f"run {run_id} has already ended: {said}" in result.output
    assert "another process" not in result.output
    assert f"finetune-agent runs show {run_id}" in result.output
    with open_service() as service:  # the library says the same, and nothing was logged
        with pytest.raises(RunEnded, match=f"has already ended: {status}"):
            service.resume(run_id)
        assert [e.kind for e in service.store.list_events(run_id=run_id)] == []


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_decision_for_a_run_waiting_at_no_gate_is_refused(status: str) -> None:
    run_id = _run_with_status(status)
    result = cli("resume", run_id, "--approve")
    assert result.exit_code == BAD_INPUT, result.output
    assert f"run {run_id} is not waiting at a gate (status {status})" in result.output
    assert f"run finetune-agent resume {run_id} without a decision" in result.output


def test_gate_names_the_gate_a_decision_is_for() -> None:
    waiting = {"id": "i-1", "kind": "approve_data", "message": "Approve the data?"}
    run_id = _run_with_status("awaiting_approval", pending_interrupt=waiting)
    # Say a first `--approve` answered approve_plan a moment ago: a second, meant for the plan
    # too, must not approve the data instead.
    late = cli("resume", run_id, "--approve", "--gate", "approve_plan")
    assert late.exit_code == BAD_INPUT, late.output
    assert f"run {run_id} waits at approve_data, not at approve_plan" in late.output
    with open_service() as service:  # nothing was answered
        record = service.store.get_run(run_id=run_id)
        assert (record.status, record.pending_interrupt["id"]) == ("awaiting_approval", "i-1")
        assert service.store.list_events(run_id=run_id) == []


@pytest.mark.parametrize("patch", ["[1, 2]", '"x"', "5"])
def test_an_edit_that_is_not_a_json_object_is_refused(patch: str) -> None:
    run_id = _run_with_status(
        "awaiting_approval", pending_interrupt={"id": "i", "kind": "approve_plan"}
    )
    result = cli("resume", run_id, "--edit", patch)
    assert result.exit_code == BAD_INPUT, result.output
    assert "--edit must be a JSON object, a config patch such as" in result.output
    assert "Traceback" not in result.output


CLAIM_AND_WAIT = """
import sys, time
from llmfinetune_agent.run_store import RunStore, make_owner
from llmfinetune_agent.settings import Settings
store = RunStore(Settings.from_env().database_url)
assert store.claim_run(run_id=sys.argv[1], owner=make_owner())
print("claimed", flush=True)
time.sleep(120)
"""


def test_a_run_whose_process_was_killed_shows_as_interrupted() -> None:
    run_id = _run_with_status("queued")
    executor = subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_WAIT, run_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert executor.stdout.readline().strip() == "claimed"
        alive = cli("runs", "list")
        assert f"{run_id}  running" in alive.output and "interrupted" not in alive.output
    finally:
        os.kill(executor.pid, signal.SIGKILL)
        executor.wait()

    listed = cli("runs", "list")
    assert listed.exit_code == 0
    assert f"{run_id}  interrupted" in listed.output
    assert f"resume it with finetune-agent resume {run_id}" in listed.output
    shown = cli("runs", "show", run_id)
    assert f"finetune-agent resume {run_id}" in shown.output
    detail = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert (detail["status"], detail["interrupted"]) == ("running", True)

    with open_service() as service:
        with TestClient(create_app(service.settings, workers=False)) as client:
            page = client.get("/runs").json()["data"]
            assert [(r["id"], r["status"], r["interrupted"]) for r in page] == [
                (run_id, "running", True)
            ]
            assert client.get(f"/runs/{run_id}").json()["interrupted"] is True
        # The stored status is untouched, and the resume the hint gives can claim the run.
        assert service.store.get_run(run_id=run_id).status == "running"
        assert service.store.claim_run(run_id=run_id, owner=make_owner())
