"""One run as `runs show --json` and `GET /runs/{id}` show it: status, gate, metrics, training."""

from __future__ import annotations

from typing import Any

from llmfinetune_agent.execution.decisions import unapplied_decision
from llmfinetune_agent.execution.run_log import NODE_STARTED
from llmfinetune_agent.execution.service import RunService, interrupts_of, thread
from llmfinetune_agent.improvement import all_iterations
from llmfinetune_agent.run_store import RunRecord

TRAINING_SUMMARY_KEYS = (
    "status",
    "global_step",
    "total_steps",
    "resumed_from_step",
    "train_loss",
    "eta_seconds",
    "message",
)


def describe_run(service: RunService, run_id: str) -> dict[str, Any]:
    """What `runs show --json` and `GET /runs/{id}` return for one run."""
    run = service.require(run_id)
    snapshot = service.graph.get_state(thread(run_id))  # read once: each read loads a checkpoint
    values = dict(snapshot.values or {})
    pending = interrupts_of(snapshot)
    # Every accepted decision is listed, also one its gate never applied (cancelled first).
    if unapplied := unapplied_decision(service, run, pending, values):
        values["decisions"] = [*values.get("decisions", []), unapplied]
    evaluation = values.get("evaluation") or {}
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "interrupted": service.store.is_interrupted(run),
        "current_node": run.current_node,
        # An accepted decision (queued, or running with it) leaves the gate in the checkpoint
        # until a worker resumes; only a run still waiting has a gate for a human.
        "pending_interrupt": pending[0] if pending and run.status == "awaiting_approval" else None,
        "decisions": values.get("decisions", []),
        "metrics": {"base": evaluation.get("base") or {}, "tuned": evaluation.get("tuned") or {}},
        "thresholds_passed": evaluation.get("passed"),
        "model_path": run.model_path or (values.get("final") or {}).get("model_path"),
        "error": run.error,
        "run_dir": run.run_dir,
        "parent_run_id": run.parent_run_id,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "training": _live_training(service, run) or _training_summary(values.get("training")),
        "data": _data_summary(values.get("data")),
        "routing": values.get("log", []),
        "outcome_reason": values.get("reason"),
        "iteration": values.get("iteration", 1),
        "iterations": all_iterations(values),
    }


def _training_summary(training: dict[str, Any] | None) -> dict[str, Any] | None:
    if not training:
        return None
    return {k: training.get(k) for k in TRAINING_SUMMARY_KEYS}


def _live_training(service: RunService, run: RunRecord) -> dict[str, Any] | None:
    """While the trainer runs: the newest step, total, loss and ETA of this segment, from the
    event log (the graph state only has them once the segment ends); None otherwise."""
    if run.status != "running" or run.current_node != "trainer":
        return None
    started = service.store.latest_event(run_id=run.id, kind=NODE_STARTED)
    event = service.store.latest_event(
        run_id=run.id, kind="training_progress", after_seq=started.seq if started else 0
    )
    # A dead owner's last step stays useful ("killed at step 23"); its ETA does not.
    interrupted = service.store.is_interrupted(run)
    live = dict.fromkeys(TRAINING_SUMMARY_KEYS) | {
        "status": "interrupted" if interrupted else "running"
    }
    if event is None:
        return live | {"message": "starting: loading the model and data"}
    p = event.payload
    return live | {
        "global_step": p.get("step"),
        "total_steps": p.get("total_steps"),
        "train_loss": p.get("loss"),
        "eta_seconds": None if interrupted else p.get("eta_seconds"),
        "learning_rate": p.get("learning_rate"),
        "progress_at": event.time.isoformat(),
        "message": f"training: step {p.get('step')} of {p.get('total_steps')}",
    }


def _data_summary(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    keys = ("kind", "format", "train_rows", "eval_rows", "data_hash", "report_path")
    return {k: data.get(k) for k in keys}
