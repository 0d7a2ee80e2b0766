"""The trainer agent: trains to the next approval fraction (or to the end), resuming from the
newest checkpoint of the same configuration — after a gate, a crash, or a restart alike. On the
improvement loop's 'continue' route it starts from the previous iteration's last checkpoint;
a gate that checkpoint is already past is not asked again (no new steps to review). A cancel
requested while it trains stops it at the next step, with a checkpoint saved there.

Each segment has an attempt id computed from state (run, training directory, where the
segment stops), stored with its result: the same segment asked again — the node re-running
after a crash — has the same id, so the Ray backend re-attaches to the training job already
running for it instead of starting a second one.

What a finished segment produced is the run's `artifact`: an adapter (LoRA) or a full model,
or, for a diverged training, its last checkpoint before the blow-up."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config, run_path
from llmfinetune_agent.artifacts import trained_artifact
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.improvement import usable_warm_start
from llmfinetune_agent.pipeline import train_direct
from llmfinetune_agent.reward_models import with_resolved_reward_models
from llmfinetune_agent.routing import checkpoint_key, next_training_stop
from llmfinetune_agent.sections import trained_inputs
from llmfinetune_agent.state import RunState

RECENT_LOSSES = 10
RECENT_REWARDS = 200
SAMPLES_SHOWN = 4


def training_dir(state: RunState) -> Path:
    """One directory per (model, data, training settings, start point): a changed config, or
    continuing from a checkpoint rather than the base model, trains into a new directory."""
    parts: list[Any] = [trained_inputs(state["config"]), state["data"]["data_hash"]]
    warm_start = usable_warm_start(state)
    if warm_start:
        parts.append(warm_start["checkpoint"])
    key = json.dumps(parts, sort_keys=True)
    return run_path(state, "training", hashlib.sha256(key.encode()).hexdigest()[:12])


def attempt_id(state: RunState, fraction: float | None) -> str:
    """The deterministic id of one training segment: `<run id>-<hash>` of its training
    directory and stop (the same segment asked twice gets the same id)."""
    key = json.dumps([training_dir(state).name, fraction])
    return f"{state['run_id']}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def trainer(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: one training segment; progress goes to the `custom` stream."""
    config, context = run_config(state), run_context(runtime)
    # A reward model named by its registry id is trained from its folder.
    config = config.model_copy(
        update={"training": with_resolved_reward_models(config.training, context.store)}
    )
    stop_at = next_training_stop(state)
    warm_start = usable_warm_start(state)
    start = f", continuing iteration {warm_start['from_iteration']}" if warm_start else ""
    emit(
        "agent",
        agent="trainer",
        message=f"training ({config.training.method}{start})",
        stop_at=stop_at,
    )
    last_progress: dict[str, Any] = {}

    def forward(kind: str, payload: dict[str, Any]) -> None:
        if kind == "training_progress":
            last_progress.update(payload)
        emit(kind, **payload)

    def segment(fraction: float | None) -> dict[str, Any]:
        attempt = attempt_id(state, fraction)
        # AutoTrain trains in its own environment on this machine, never through Ray Train;
        # a prompt search generates in this process.
        trains_weights = config.training.backend == "trl" and config.training.method != "prompt"
        on_cluster = context.cluster_training if trains_weights else None
        extra = {"attempt_id": attempt} if on_cluster else {"backends_dir": context.backends_dir}
        extra["reward_modules"] = context.reward_modules
        summary = (on_cluster or train_direct)(
            config,
            training_dir(state),
            state["data"],
            stop_at_fraction=fraction,
            progress=forward,
            continue_from=Path(warm_start["checkpoint"]) if warm_start else None,
            cache_dir=context.models_cache,
            should_stop=context.should_stop,
            **extra,
        )
        return {**summary, "attempt_id": attempt}

    summary = segment(stop_at)
    update: dict[str, Any] = {}
    if _nothing_new(summary):
        summary, stop_at, update = _skip_passed_gates(state, summary, segment)
    _report(summary)
    _warn_if_restarted(state.get("training") or {}, summary)
    summary["fraction"] = stop_at if summary["status"] == "paused" else None
    summary["eta_seconds"] = last_progress.get("eta_seconds")
    summary["recent_losses"] = _recent_losses(summary["log_history_path"])
    if summary.get("completions_path"):  # an RL run: the reward curve and sample completions
        summary["recent_rewards"] = _recent_rewards(summary["log_history_path"])
        summary["sample_completions"] = _last_samples(summary["completions_path"])
    artifact = trained_artifact(state, summary)
    return {**update, "training": summary, "artifact": artifact, "evaluation": None}


def _warn_if_restarted(paused: dict[str, Any], summary: dict[str, Any]) -> None:
    """Say so when a segment meant to go on from a paused one started further back: its
    checkpoint was deleted (or damaged) while the run waited at the gate, and the steps done
    before the pause are trained again."""
    if paused.get("status") != "paused" or summary.get("continued_from"):
        return
    lost = (paused.get("global_step") or 0) - (summary.get("resumed_from_step") or 0)
    if lost > 0:
        summary["steps_trained_again"] = lost
        emit(
            "agent",
            agent="trainer",
            message=(
                f"the checkpoint at step {paused['global_step']} is gone (deleted or damaged "
                f"while the run waited): training went on from step "
                f"{summary.get('resumed_from_step') or 0}, so {lost} step(s) were trained again"
            ),
        )


def _nothing_new(summary: dict[str, Any]) -> bool:
    """A segment that started at another iteration's checkpoint already past its stop."""
    return bool(
        summary["continued_from"]
        and summary["status"] == "paused"
        and summary["global_step"] == summary["resumed_from_step"]
    )


def _skip_passed_gates(
    state: RunState,
    summary: dict[str, Any],
    segment: Callable[[float | None], dict[str, Any]],
) -> tuple[dict[str, Any], float | None, dict[str, Any]]:
    """Mark the gates at or before the continued step as passed and train to the next one.

    The earlier iteration's steps were reviewed then; a gate here would show no new step.
    """
    from phases.training.callbacks import target_step

    step, total = summary["resumed_from_step"], summary["total_steps"]
    approved = dict(state.get("approved", {}))
    fractions = state["config"]["hitl"]["training_checkpoints"]
    pending = [f for f in fractions if not approved.get(checkpoint_key(f))]
    passed = [f for f in pending if target_step(total, f) <= step]
    approved.update({checkpoint_key(f): True for f in passed})
    stop_at = next((f for f in pending if f not in passed), None)
    emit(
        "training_gates_passed",
        fractions=passed,
        step=step,
        total_steps=total,
        reason=f"the continued checkpoint is already at step {step} of {total}",
    )
    summary = segment(stop_at)
    summary["gates_passed_at_start"] = passed
    return summary, stop_at, {"approved": approved}


def _report(summary: dict[str, Any]) -> None:
    """Events for where this segment started and how it ended."""
    if summary["continued_from"]:
        emit(
            "training_continued",
            step=summary["resumed_from_step"],
            checkpoint=summary["continued_from"],
        )
    elif summary["resumed_from_step"]:
        emit("training_resumed", step=summary["resumed_from_step"])
    emit("training_result", **{k: summary[k] for k in ("status", "global_step", "total_steps")})


def _recent_losses(log_history_path: str) -> list[dict[str, float]]:
    return _recent(log_history_path, "loss")[-RECENT_LOSSES:]


def _recent_rewards(log_history_path: str) -> list[dict[str, float]]:
    """The reward curve (every logged step: a gate shows its shape, not only its end)."""
    points = [p for p in _recent(log_history_path, "reward") if p["reward"] is not None]
    return points[-RECENT_REWARDS:]


def _recent(log_history_path: str, key: str) -> list[dict[str, float]]:
    try:
        history = json.loads(Path(log_history_path).read_text())
    except (OSError, ValueError):
        return []
    return [{"step": h["step"], key: h[key]} for h in history if key in h]


def _last_samples(completions_path: str) -> list[dict[str, Any]]:
    """The newest logged sample completions, with their rewards."""
    lines = Path(completions_path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[-SAMPLES_SHOWN:]]
