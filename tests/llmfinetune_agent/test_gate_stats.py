"""How `stats` counts gates: asked, answered, and still waiting (a run that ended while its gate
was open waits no more)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace

from llmfinetune_agent.stats import gate_stats

START = datetime(2026, 12, 7, 12, 0, 0)


def _event(run_id: str, event: str, seconds: int, **payload) -> SimpleNamespace:
    return SimpleNamespace(
        run_id=run_id,
        kind=event,
        time=START + timedelta(seconds=seconds),
        payload_json=json.dumps(payload),
    )


def test_a_gate_of_a_run_that_ended_is_not_waiting() -> None:
    events = [
        _event("answered", "interrupt", 0, kind="approve_plan"),
        _event("answered", "decision", 30, gate="approve_plan", decision="approve"),
        _event("cancelled", "interrupt", 0, kind="approve_plan"),
        _event("cancelled", "cancelled", 5, by="cli"),
        _event("failed", "interrupt", 0, kind="approve_data"),
        _event("failed", "failed", 5, error="bad input: ..."),
        _event("waiting", "interrupt", 0, kind="approve_plan"),
    ]
    stats = gate_stats(events)
    assert (stats["answered"], stats["waiting"]) == (1, 1)
    assert stats["by_gate"]["approve_plan"]["asked"] == 3
    assert stats["by_gate"]["approve_plan"]["answered"] == 1
