"""The trainer agent: trains to the next approval fraction (or to the end), resuming from the
newest checkpoint of the same configuration — after a gate, a crash, or a restart alike. On the
improvement loop's 'continue' route it starts from the previous iteration's last checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from llmfinetune_agent.agents.common import emit, run_config, run_path
from llmfinetune_agent.agents.improvement import usable_warm_start
from llmfinetune_agent.agents.orchestrator import next_training_stop
from llmfinetune_agent.direct import train_direct
from llmfinetune_agent.state import RunState

RECENT_LOSSES = 10


def training_dir(state: RunState) -> Path:
    """One directory per (model, data, training settings, start point): a changed config, or
    continuing from a checkpoint rather than the base model, trains into a new directory."""
    config = state["config"]
    parts = [
        config["model"],
        state["data"]["data_hash"],
        config["training"],
        config["data"]["max_length"],
    ]
    warm_start = usable_warm_start(state)
    if warm_start:
        parts.append(warm_start["checkpoint"])
    key = json.dumps(parts, sort_keys=True)
    return run_path(state, "training", hashlib.sha256(key.encode()).hexdigest()[:12])


def trainer(state: RunState) -> dict[str, Any]:
    """Graph node: one training segment; progress goes to the `custom` stream."""
    config = run_config(state)
    stop_at = next_training_stop(state)
    warm_start = usable_warm_start(state)
    start = f", continuing iteration {warm_start['from_iteration']}" if warm_start else ""
    emit(
        "agent",
        agent="trainer",
        message=f"training ({config.training.method}{start})",
        stop_at=stop_at,
    )
    summary = train_direct(
        config,
        training_dir(state),
        state["data"],
        stop_at_fraction=stop_at,
        progress=lambda kind, payload: emit(kind, **payload),
        continue_from=Path(warm_start["checkpoint"]) if warm_start else None,
    )
    if summary["continued_from"]:
        emit(
            "training_continued",
            step=summary["resumed_from_step"],
            checkpoint=summary["continued_from"],
        )
    elif summary["resumed_from_step"]:
        emit("training_resumed", step=summary["resumed_from_step"])
    summary["fraction"] = stop_at if summary["status"] == "paused" else None
    summary["recent_losses"] = _recent_losses(summary["log_history_path"])
    emit("training_result", **{k: summary[k] for k in ("status", "global_step", "total_steps")})
    return {"training": summary, "evaluation": None}


def _recent_losses(log_history_path: str) -> list[dict[str, float]]:
    try:
        history = json.loads(Path(log_history_path).read_text())
    except (OSError, ValueError):
        return []
    points = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    return points[-RECENT_LOSSES:]
