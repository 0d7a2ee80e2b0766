"""Service statistics: runs, the time and steps they spent, gates answered and how long each
waited for its answer, interactions served with latency percentiles, and feedback.

`finetune-agent stats` and `GET /stats` both call `service_stats`; it reads the run store's
tables (runs, the run event log, interactions, feedback) and never a checkpoint.

    stats = service_stats(database_url)
    stats["interactions"]["latency_seconds"]["p90"]
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select

from llmfinetune_agent.store.engine import engine_for
from llmfinetune_agent.store.schema import EventRow, FeedbackRow, InteractionRow, RunRow

ENDED = ("completed", "failed", "cancelled")
# The events the statistics read from the run event log (an ended run's gate waits no more).
_EVENT_KINDS = ("interrupt", "decision", "training_result", "cancelled", "failed")


def service_stats(database_url: str) -> dict[str, Any]:
    """Every statistic, as one JSON-ready dict (see the module docstring)."""
    engine = engine_for(database_url)
    with engine.connect() as conn:
        runs = conn.execute(
            select(
                RunRow.id, RunRow.status, RunRow.config_json, RunRow.created_at, RunRow.updated_at
            )
        ).all()
        events = conn.execute(
            select(EventRow.run_id, EventRow.kind, EventRow.time, EventRow.payload_json)
            .where(EventRow.kind.in_(_EVENT_KINDS))
            .order_by(EventRow.run_id, EventRow.seq)
        ).all()
        interactions = conn.execute(
            select(InteractionRow.source, InteractionRow.model_id, InteractionRow.details_json)
        ).all()
        feedback = conn.execute(
            select(FeedbackRow.rating, FeedbackRow.better, FeedbackRow.comment)
        ).all()
    return {
        "runs": run_stats(runs, events),
        "gates": gate_stats(events, ended={r.id for r in runs if r.status in ENDED}),
        "interactions": interaction_stats(interactions),
        "feedback": feedback_stats(feedback),
    }


def run_stats(runs: list[Any], events: list[Any]) -> dict[str, Any]:
    """Runs by status and by method; wall time of the ended ones; optimizer steps (or a
    prompt run's metric calls) of their last training segments."""
    steps: dict[str, int] = {}
    for event in events:
        if event.kind == "training_result":
            payload = json.loads(event.payload_json)
            steps[event.run_id] = max(steps.get(event.run_id, 0), payload.get("global_step") or 0)
    methods = {r.id: _method(r.config_json) for r in runs}
    seconds = [(r.updated_at - r.created_at).total_seconds() for r in runs if r.status in ENDED]
    steps_by_method: dict[str, int] = defaultdict(int)
    for run_id, count in steps.items():
        steps_by_method[methods.get(run_id, "?")] += count
    return {
        "total": len(runs),
        "by_status": dict(Counter(r.status for r in runs)),
        "by_method": dict(Counter(methods.values())),
        "ended_seconds": summary(seconds),
        "training_steps": sum(steps.values()),
        "steps_by_method": dict(steps_by_method),
    }


def gate_stats(events: list[Any], ended: set[str] | None = None) -> dict[str, Any]:
    """Per gate: how often it was asked and answered, the answers, and how long it waited
    (from the run pausing there to the decision being accepted). A gate of a run in `ended`
    (or one whose run logged its end) is not waiting: not every way a run ends logs an event."""
    asked: dict[str, tuple[str, datetime]] = {}  # run -> (gate, when), the open interrupt
    gates: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"asked": 0, "answered": 0, "decisions": Counter(), "waits": []}
    )
    for event in events:
        payload = json.loads(event.payload_json)
        if event.kind == "interrupt":
            gate = payload.get("kind") or "?"
            asked[event.run_id] = (gate, event.time)
            gates[gate]["asked"] += 1
        elif event.kind in ("cancelled", "failed"):  # the run ended: its gate waits no more
            asked.pop(event.run_id, None)
        elif event.kind == "decision" and event.run_id in asked:  # the gate's own record
            gate, since = asked.pop(event.run_id)
            gate = payload.get("gate") or gate
            gates[gate]["answered"] += 1
            gates[gate]["decisions"][payload.get("decision") or "?"] += 1
            gates[gate]["waits"].append((event.time - since).total_seconds())
    by_gate = {
        gate: {
            "asked": g["asked"],
            "answered": g["answered"],
            "decisions": dict(g["decisions"]),
            "wait_seconds": summary(g["waits"]),
        }
        for gate, g in gates.items()
    }
    waits = [w for g in gates.values() for w in g["waits"]]
    return {
        "answered": len(waits),
        "waiting": len(asked.keys() - (ended or set())),
        "wait_seconds": summary(waits),
        "by_gate": by_gate,
    }


def interaction_stats(rows: list[Any]) -> dict[str, Any]:
    """Interactions served, by source and model, with latency percentiles and tokens."""
    details = [json.loads(r.details_json or "{}") for r in rows]
    latencies = [latency for d in details if (latency := _latency(d)) is not None]
    return {
        "total": len(rows),
        "by_source": dict(Counter(r.source for r in rows)),
        "by_model": dict(Counter(r.model_id for r in rows)),
        "latency_seconds": summary(latencies),
        "prompt_tokens": sum(d.get("prompt_tokens") or d.get("input_tokens") or 0 for d in details),
        "completion_tokens": sum(d.get("completion_tokens") or 0 for d in details),
    }


def feedback_stats(rows: list[Any]) -> dict[str, Any]:
    """Feedback given: thumbs up and down, better answers and comments."""
    ratings = Counter(r.rating for r in rows if r.rating)
    return {
        "total": len(rows),
        "up": ratings.get("up", 0),
        "down": ratings.get("down", 0),
        "better_answers": sum(1 for r in rows if r.better),
        "comments": sum(1 for r in rows if r.comment),
    }


def summary(values: list[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p90, p99 and max of `values` (nearest-rank percentiles; None when
    there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 4),
        **{f"p{q}": round(percentile(ordered, q), 4) for q in (50, 90, 99)},
        "max": round(ordered[-1], 4),
    }


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank q-th percentile of sorted, non-empty `ordered`."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _latency(details: dict[str, Any]) -> float | None:
    """An interaction's latency: the generate endpoint's `latency_seconds`, a chat turn's
    `seconds`."""
    value = details.get("latency_seconds", details.get("seconds"))
    return float(value) if isinstance(value, (int, float)) else None


def _method(config_json: str) -> str:
    try:
        training = json.loads(config_json).get("training") or {}
    except (ValueError, AttributeError):
        return "?"
    return training.get("method") or "sft"
