"""`finetune-agent cancel`: a queued or waiting run ends at once, an ended or unknown one is an
error, a decision accepted before the cancel stays in the run's decision log, and a run
cancelled while it trains stops within a few steps with its checkpoint saved, ends `cancelled`,
and a fork of it resumes training from that checkpoint's step."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED, OK
from llmfinetune_agent.config import RunConfig, parse_run_config
from llmfinetune_agent.execution import RunEnded, RunService, open_service
from llmfinetune_agent.execution.decisions import accept_decision
from llmfinetune_agent.fork import fork_run, run_history

REPO = Path(__file__).resolve().parents[2]
NO_GATES = {
    "approve_plan": False,
    "approve_data": False,
    "training_checkpoints": [],
    "approve_evaluation": True,
    "approve_fixes": True,
}


def run_config(*, max_steps: int, hitl: dict[str, Any] | None = None) -> RunConfig:
    """The tiny-model quickstart with `max_steps` and no gate before evaluation."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["training"].update({"max_steps": max_steps, "save_steps": 1000})
    config["evaluation"].update({"metrics": ["rougeL"], "max_examples": 3, "max_new_tokens": 6})
    config["hitl"] = hitl or NO_GATES
    return parse_run_config(config, source="test")


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def wait_for_event(service: RunService, run_id: str, kind: str, timeout: float = 120) -> Any:
    """The run's first event of `kind`, polled from its log."""
    deadline = time.monotonic() + timeout
    while (event := service.store.latest_event(run_id=run_id, kind=kind)) is None:
        assert time.monotonic() < deadline, f"run {run_id} logged no {kind}"
        time.sleep(0.05)
    return event


def execute_in_background(service: RunService, run_id: str, *, resume: bool = False) -> Any:
    """Execute the run in a thread, as a worker or `finetune-agent run` in another process would."""
    target = service.resume if resume else service.start
    thread = threading.Thread(target=target, args=(run_id,), daemon=True)
    thread.start()
    return thread


def cancel_while_training(service: RunService, run_id: str, thread: Any) -> dict[str, Any]:
    """Wait for training progress, cancel through the CLI, wait for the run to end."""
    wait_for_event(service, run_id, "training_progress")
    asked = cli("cancel", run_id)
    assert asked.exit_code == OK, asked.output
    assert f"run {run_id} is running: asked it to stop" in asked.output
    thread.join(180)
    assert not thread.is_alive(), "the run did not stop after the cancel"
    record = service.require(run_id)
    assert record.status == "cancelled", record.error
    return service.state_values(run_id)


def test_cancel_ends_an_unexecuted_run_at_once_and_refuses_an_ended_or_unknown_one() -> None:
    """Queued, waiting at a gate, or `running` with its executor gone: cancelled at once."""
    with open_service() as service:
        queued = service.create_run(run_config(max_steps=4))
        waiting = service.create_run(run_config(max_steps=4, hitl={"approve_plan": True}))
        assert service.start(waiting.id).status == "awaiting_approval"
        # `running`, but its executor was killed: nobody would ever see a stop request.
        interrupted = service.create_run(run_config(max_steps=4))
        dead = subprocess.Popen(["true"])
        dead.wait()
        owner = f"{socket.gethostname()}:{dead.pid}:killed"
        assert service.store.claim_run(run_id=interrupted.id, owner=owner)

    runs = (queued, waiting, interrupted)
    for run in runs:
        result = cli("cancel", run.id)
        assert (result.exit_code, result.output.strip()) == (OK, f"run {run.id} cancelled")
    with open_service() as service:
        for run in runs:
            record = service.require(run.id)
            assert (record.status, record.error) == ("cancelled", "cancelled on request")
            assert record.pending_interrupt is None
            assert service.store.latest_event(run_id=run.id, kind="cancelled").payload == {
                "by": "cli"
            }
        # Nothing is left for a worker to take.
        assert service.store.recover_orphans(statuses=("queued", "running")) == []

    again = cli("cancel", queued.id)
    assert again.exit_code == FAILED
    assert f"run {queued.id} has already ended: cancelled" in again.output
    unknown = cli("cancel", "nope")
    assert unknown.exit_code == BAD_INPUT and "no run with id 'nope'" in unknown.output


def test_a_decision_accepted_before_a_cancel_stays_in_the_decision_log() -> None:
    """Accepted (202, the run queued for a worker), then cancelled before a worker resumed the
    gate with it: the run ends cancelled and `runs show` still lists the decision, unapplied."""
    edit = {"decision": "edit", "edits": {"training": {"learning_rate": 0.001}}, "comment": "lr"}
    with open_service() as service:
        run = service.create_run(run_config(max_steps=4, hitl={"approve_plan": True}))
        assert service.start(run.id).status == "awaiting_approval"
        gate = service.pending_interrupts(run.id)[0]
        accept_decision(service, run_id=run.id, interrupt_id=gate["id"], decision=edit)
        assert service.require(run.id).status == "queued"

    result = cli("cancel", run.id)
    assert (result.exit_code, result.output.strip()) == (OK, f"run {run.id} cancelled")
    shown = json.loads(cli("runs", "show", run.id, "--json").stdout)
    assert shown["status"] == "cancelled" and shown["pending_interrupt"] is None
    listed = [
        {k: d[k] for k in ("gate", "decision", "patch", "comment", "applied", "note")}
        for d in shown["decisions"]
    ]
    assert listed == [
        {
            "gate": "approve_plan",
            "decision": "edit",
            "patch": {"training": {"learning_rate": 0.001}},
            "comment": "lr",
            "applied": False,
            "note": "accepted, not applied: the run was cancelled",
        }
    ]
    assert shown["iterations"][-1]["decisions"] == shown["decisions"]
    with open_service() as service, pytest.raises(RunEnded):  # and nothing applies it later
        service.resume(run.id, decision=edit, interrupt_id=gate["id"])


def test_cancel_while_training_stops_at_a_checkpoint_a_fork_resumes_from() -> None:
    with open_service() as service:
        # Far more steps than a second of training on any CPU: the watch reads the store about
        # once a second, so the stop comes a few steps (here) to a few dozen (a fast CPU) in.
        parent = service.create_run(run_config(max_steps=1000))
        values = cancel_while_training(
            service, parent.id, execute_in_background(service, parent.id)
        )
        training = values["training"]
        assert training["status"] == "cancelled" and values["outcome"] == "cancelled"
        stopped_at, total = training["global_step"], training["total_steps"]
        assert total == 1000 and 0 < stopped_at < total // 4, training
        checkpoint = Path(training["checkpoint_path"])
        assert checkpoint.name == f"checkpoint-{stopped_at}" and checkpoint.is_dir()
        assert (checkpoint / "trainer_state.json").is_file()
        assert values.get("evaluation") is None  # nothing ran after the trainer

        # Fork at the checkpoint written just before the trainer ran: the child's trainer finds
        # the parent's checkpoint (copied into its own directory) and goes on from its step.
        before_training = next(
            c for c in run_history(service, parent.id) if c["next"] == ["trainer"]
        )
        child = fork_run(service, parent.id, checkpoint_id=before_training["checkpoint_id"])
        thread = execute_in_background(service, child.id, resume=True)
        first = wait_for_event(service, child.id, "training_progress")
        assert first.payload["step"] > stopped_at
        child_training = cancel_while_training(service, child.id, thread)["training"]
        assert child_training["resumed_from_step"] == stopped_at
        assert child_training["checkpoint_path"].startswith(child.run_dir)
