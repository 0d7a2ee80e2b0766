"""The post_training agent: candidates of the accepted model, each made and gated.

It exports the accepted artifact as a full model (a LoRA adapter merged into its base), then
calls the post-training phase: a merge with this run's model (when `post_training.merge` is
set; registry sources resolved here), and each `post_training.quantize` target made from the
champion so far. Every candidate is gated on the run's eval set and rolled back when it misses;
the candidates table goes to state for the release gate. Heavy work only: the gate that asks
about the table is its own node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.artifacts import current_artifact
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.state import RunState
from phases.post_training.errors import PostTrainingInputError

FULL_MODEL_KINDS = ("adapter", "model")


def tuned_model_dir(state: RunState, cache_dir: Path) -> Path:
    """The accepted model as a full model folder: `<run_dir>/final` when finalize will write the
    same thing there (LoRA merged, or a full model), else a merged copy for post-training."""
    from phases.post_training.merge import export_final_model

    config, artifact = run_config(state), current_artifact(state)
    if artifact is None or artifact["kind"] not in FULL_MODEL_KINDS:
        kind = artifact["kind"] if artifact else "no"
        raise PostTrainingInputError(
            f"post-training works on language models and LoRA adapters; this run has {kind} "
            "artifact: remove post_training.quantize and post_training.merge"
        )
    lora_kept = artifact["kind"] == "adapter" and not config.post_training.merge_lora
    target = Path(state["run_dir"]) / ("post_training/merged" if lora_kept else "final")
    return export_final_model(Path(artifact["path"]), target, merge_lora=True, cache_dir=cache_dir)


def post_training(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: make and gate the candidates; the table goes to `post_training` in state."""
    from llmfinetune_agent.merge_sources import run_merge_step
    from phases.post_training.stage import run_post_training

    config, context = run_config(state), run_context(runtime)
    emit("agent", agent="post_training", message="exporting the accepted model")
    tuned = tuned_model_dir(state, context.models_cache)
    data = state.get("data") or {}
    result = run_post_training(
        config.post_training,
        evaluation=config.evaluation,
        tuned_dir=tuned,
        eval_path=Path(data["eval_path"]),
        output_dir=Path(state["run_dir"]) / "post_training",
        base_model=config.model.name_or_path,
        train_path=Path(data["train_path"]) if data.get("train_path") else None,
        cache_dir=context.models_cache,
        merge_step=run_merge_step(state, context),
        progress=lambda message: emit("agent", agent="post_training", message=message),
    )
    champion = result["candidates"][result["champion"]]
    emit("post_training_result", champion=champion["name"], candidates=len(result["candidates"]))
    return {"post_training": result, "release": None}
