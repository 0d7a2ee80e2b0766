"""The planner: estimates what training will cost (steps, time, memory) from the prepared
data and the model's size, and states the rule the tuned model will be accepted by, for the
plan gate. Its own step, so an edit that makes the plan
stale (another model, other training settings) is planned again. A run that trains with
AutoTrain gets the backend's version and limits in its plan, or fails here, before any
compute, when the backend is not installed."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.reward_models import with_resolved_reward_models
from llmfinetune_agent.state import RunState


def planner(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: the training estimate shown at the plan gate."""
    from models import resolve_device
    from models.inspection import count_parameters
    from phases.evaluation.acceptance import planned_rule
    from phases.training import estimate_training

    config, data = run_config(state), state["data"]
    _check_rewards(config, data, run_context(runtime))
    examples, mean_tokens = data["train_rows"], data["report"]["token_stats"].get("mean", 0.0)
    backend = None
    if config.training.backend == "autotrain":
        from phases.training.autotrain.plan import autotrain_plan, trained_sequences

        backend = autotrain_plan(
            config.training,
            training_checkpoints=config.hitl.training_checkpoints,
            backends_dir=run_context(runtime).backends_dir,
        )
        examples, mean_tokens = trained_sequences(
            config.training, examples, mean_tokens, max_length=config.data.max_length
        )
    plan = estimate_training(
        config.training,
        num_examples=examples,
        mean_tokens=mean_tokens,
        num_parameters=count_parameters(config.model, cache_dir=run_context(runtime).models_cache),
        device=resolve_device(config.model.device),
    )
    if backend is not None:
        plan["backend"] = backend
    plan["acceptance"] = planned_rule(config.evaluation)
    emit("plan", **plan)
    return {"plan": plan}


def _check_rewards(config: Any, data: dict[str, Any], context: RunContext) -> None:
    """A GRPO/RLOO run's rewards, checked before the plan is shown (no model loads): an
    unknown registry id, a module outside the allow-list, a missing reference column."""
    from pathlib import Path

    from phases.training.config import RLTraining
    from phases.training.data import load_training_data
    from phases.training.run import reward_functions

    if not isinstance(config.training, RLTraining):
        return
    training = with_resolved_reward_models(config.training, context.store)
    rows = load_training_data(Path(data["train_path"]), training.method)
    reward_functions(training, rows, context.reward_modules)
