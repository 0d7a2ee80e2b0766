"""What the run pages show, read from the run store, the event log and the graph state: the
status panels, the training progress and its chart points, the event tail, metric rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmfinetune_agent.execution import RunService, describe_run
from llmfinetune_agent.execution.run_log import NODE_STARTED, all_events
from llmfinetune_agent.run_store import EventRecord
from phases.training.data import RL_METHODS

TAIL_LENGTH = 40
PROGRESS = "training_progress"
# Events that change what the status panels show (they are fetched again on each).
STATE_KINDS = frozenset(
    {"route", "decision", "interrupt", "node_started", "failed", "decision_accepted", "resumed"}
)


@dataclass
class GateItem:
    """A gate as the inbox and the run page show it, with what happened when it was answered."""

    gate: dict[str, Any]
    run: dict[str, Any]
    since: Any
    outcome: str | None = None
    outcome_error: bool = False
    comment: str | None = None
    edits: str | None = None
    edit_errors: list[str] | None = None
    edit_ok: str | None = None


def run_context(service: RunService, run_id: str) -> dict[str, Any]:
    """Everything the run page and its panels render."""
    run = describe_run(service, run_id)
    record = service.require(run_id)
    events = all_events(service.store, run_id)
    training = record.config.get("training") or {}
    gate = run.get("pending_interrupt")
    progress = progress_of(events)
    if progress and run.get("interrupted"):  # a dead process's last step, but no time left
        progress = {**progress, "eta": None}
    return {
        "run": run,
        "method": training.get("method", "?"),
        "reward_chart": training.get("method") in RL_METHODS,
        "model": (record.config.get("model") or {}).get("name_or_path", "?"),
        "ended": run["status"] in ("completed", "failed", "cancelled"),
        "gate_item": GateItem(gate, run, record.updated_at) if gate else None,
        "tail": [tail_entry(e) for e in reversed(events[-TAIL_LENGTH:])],
        "last_seq": events[-1].seq if events else 0,
        "chart_points": chart_points(events),
        "progress": progress,
        "metric_rows": metric_rows(run.get("metrics") or {}, state_checks(service, run_id)),
    }


def state_checks(service: RunService, run_id: str) -> list[dict[str, Any]]:
    return (service.state_values(run_id).get("evaluation") or {}).get("checks") or []


def chart_points(events: list[EventRecord]) -> list[dict[str, Any]]:
    """`{step, loss, lr, reward}` of the latest training (a step that goes back starts a new
    one); `reward` is an RL run's mean reward of the step, None otherwise."""
    points: list[dict[str, Any]] = []
    for event in events:
        if event.kind != PROGRESS:
            continue
        point = point_of(event.payload)
        if points and point["step"] < points[-1]["step"]:
            points = []
        points.append(point)
    return points


def point_of(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": payload.get("step") or 0,
        "loss": payload.get("loss"),
        "lr": payload.get("learning_rate"),
        "reward": (payload.get("rewards") or {}).get("reward"),
    }


def progress_of(events: list[EventRecord]) -> dict[str, Any] | None:
    """The newest training step, with the time since its trainer node started."""
    started = None
    latest = None
    for event in events:
        if event.kind == NODE_STARTED and event.payload.get("node") == "trainer":
            started = event.time
        elif event.kind == PROGRESS:
            latest = event
    return progress_view(latest, started) if latest else None


def progress_view(event: EventRecord, started: datetime | None) -> dict[str, Any]:
    payload = event.payload
    return {
        "step": payload.get("step"),
        "total": payload.get("total_steps"),
        "loss": payload.get("loss"),
        "learning_rate": payload.get("learning_rate"),
        "reward": (payload.get("rewards") or {}).get("reward"),
        "eta": payload.get("eta_seconds"),
        "elapsed": (event.time - started).total_seconds() if started else None,
        "point": point_of(payload),
        "time": event.time,
    }


def tail_entry(event: EventRecord) -> dict[str, Any]:
    """One line of the event log: its time, kind and the words that matter."""
    return {"seq": event.seq, "time": event.time, "kind": event.kind, "text": event_text(event)}


def event_text(event: EventRecord) -> str:
    p = event.payload
    texts = {
        "route": lambda: f"→ {p.get('next')}: {p.get('reason', '')}",
        "node_started": lambda: f"{p.get('node')} started",
        "node_finished": lambda: f"{p.get('node')} finished",
        "decision": lambda: f"{p.get('gate')}: {p.get('decision')} {p.get('comment') or ''}",
        "interrupt": lambda: f"{p.get('kind')}: {p.get('message', '')}",
        PROGRESS: lambda: (
            f"step {p.get('step')} of {p.get('total_steps')}, loss {_round(p.get('loss'))}"
        ),
        "decision_accepted": lambda: (
            f"answer accepted: {(p.get('decision') or {}).get('decision')}"
        ),
        "failed": lambda: str(p.get("error")),
    }
    if event.kind in texts:
        return texts[event.kind]()
    message = p.get("message")
    return str(message) if message else ""


def _round(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metric_rows(metrics: dict[str, Any], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Base vs tuned per metric, with its threshold rule and whether it was met."""
    base, tuned = metrics.get("base") or {}, metrics.get("tuned") or {}
    rows = []
    for metric in tuned:
        own = [c for c in checks if c.get("metric") == metric]
        before, after = base.get(metric), tuned.get(metric)
        numeric = all(isinstance(v, (int, float)) for v in (before, after))
        rows.append(
            {
                "metric": metric,
                "base": before,
                "tuned": after,
                "change": after - before if numeric else None,
                "required": ", ".join(_rule_text(c) for c in own),
                "passed": all(c.get("passed") for c in own),
            }
        )
    return rows


def _rule_text(check: dict[str, Any]) -> str:
    sign = "≥" if check.get("rule") in ("min", "above_base") else "≤"
    return f"{sign} {_round(check.get('required'))}"
