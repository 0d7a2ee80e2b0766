"""`finetune-agent worker`: a process with no HTTP server that executes the queued runs of the
database it shares with the API and the CLI, each in a worker process of its own, until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from llmfinetune_agent.execution import LocalBackend, RunService, open_service
from tests.llmfinetune_agent.test_cancel import run_config, wait_for_event
from tests.reliability.fleet import executor_pid, parent_pid

PLAN_GATE_ONLY = {
    "approve_plan": True,
    "approve_data": False,
    "training_checkpoints": [],
    "approve_evaluation": False,
    "approve_fixes": False,
}


def wait_for_status(service: RunService, run_id: str, statuses: tuple[str, ...]) -> object:
    deadline = time.monotonic() + 180
    while (run := service.require(run_id)).status not in statuses:
        assert time.monotonic() < deadline, f"run {run_id} stayed {run.status}"
        time.sleep(0.2)
    return run


def test_the_worker_executes_submitted_runs_and_stops_on_sigterm() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "llmfinetune_agent.cli", "worker", "--poll-seconds", "0.2"],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),  # the test's home: the same database as this process
    )
    try:
        with open_service() as service:
            backend = LocalBackend(service, workers=0)  # this process only submits and decides
            config = run_config(max_steps=4, hitl=PLAN_GATE_ONLY)
            config.evaluation.thresholds = {}
            run = backend.submit(config)
            waiting = wait_for_status(service, run.id, ("awaiting_approval", "failed"))
            assert waiting.status == "awaiting_approval", waiting.error
            assert waiting.pending_interrupt["kind"] == "approve_plan"
            assert waiting.owner is None  # the worker released it at the gate

            backend.decide(
                run.id,
                interrupt_id=waiting.pending_interrupt["id"],
                decision={"decision": "approve"},
            )
            done = wait_for_status(service, run.id, ("completed", "failed", "cancelled"))
            assert done.status == "completed", done.error
            kinds = [e.kind for e in service.store.list_events(run_id=run.id)]
            assert "decision_accepted" in kinds and "training_progress" in kinds

            # A cancel through the execution API reaches the training run in the worker.
            long = run_config(max_steps=1000, hitl={**PLAN_GATE_ONLY, "approve_plan": False})
            training = backend.submit(long)
            wait_for_event(service, training.id, "training_progress")
            # It trains in a worker process of its own, a child of the worker command.
            executor = executor_pid(service.require(training.id))
            assert executor not in (None, worker.pid) and parent_pid(executor) == worker.pid
            asked = backend.cancel(training.id, by="test")
            assert asked.stopping and asked.status == "running", asked
            ended = wait_for_status(service, training.id, ("completed", "failed", "cancelled"))
            assert ended.status == "cancelled", ended.error
            assert service.state_values(training.id)["training"]["global_step"] < 250
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert "executing queued runs, 1 at a time" in stderr and "worker stopped" in stderr
    assert f"Run {run.id} started, now awaiting_approval" in stderr
    assert f"Run {run.id} resumed with the accepted decision, now completed" in stderr


def test_a_stopped_worker_names_only_the_runs_still_running(tmp_path) -> None:
    from llmfinetune_agent.cli.worker_cmd import runs_left_running
    from llmfinetune_agent.run_store import RunStore

    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    ids = [
        store.create_run(name=status, config={}, run_dir=str(tmp_path / status), status=status).id
        for status in ("running", "completed", "running")
    ]
    # The second finished in the store while its worker stopped; a vanished id is skipped too.
    assert runs_left_running(store, [*ids, "0123456789ab"]) == sorted([ids[0], ids[2]])
