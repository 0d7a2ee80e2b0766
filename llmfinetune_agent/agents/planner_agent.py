"""The planner: estimates what training will cost (steps, time, memory) from the prepared
data and the model's size, for the plan gate. Its own step, so an edit that makes the plan
stale (another model, other training settings) is planned again. A run that trains with
AutoTrain gets the backend's version and limits in its plan, or fails here, before any
compute, when the backend is not installed."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.state import RunState


def planner(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: the training estimate shown at the plan gate."""
    from models import resolve_device
    from models.inspection import count_parameters
    from phases.training import estimate_training

    config, data = run_config(state), state["data"]
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
    emit("plan", **plan)
    return {"plan": plan}
