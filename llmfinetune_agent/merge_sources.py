"""Where a merge's sources are: 'run' (this run's tuned model), 'model:<id>' (the registry), or
a local folder; and the post-training stage's merge step for a run.

Resolving names is orchestration (the registry lives in the run store); merging and gating
are the post-training phase's (`phases.post_training.merge_search`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmfinetune_agent.artifacts import current_artifact
from llmfinetune_agent.run_store import RunStore
from phases.post_training.errors import PostTrainingInputError
from phases.post_training.merge_config import MergeSpec, run_merged_sources

REGISTRY_PREFIX = "model:"


def resolve_source(name: str, store: RunStore, run_model: Path | None = None) -> Path:
    """The folder a merge source names; an unknown registry id or a missing folder is an error."""
    if name == "run":
        if run_model is None:
            raise PostTrainingInputError(
                "merge source 'run' means this run's model: use it in a run"
            )
        return run_model
    if name.startswith(REGISTRY_PREFIX):
        model_id = name.removeprefix(REGISTRY_PREFIX)
        record = store.get_model(model_id=model_id)
        if record is None:
            raise PostTrainingInputError(
                f"merge source {name!r}: no registered model with id {model_id!r} "
                "(see finetune-agent models list)"
            )
        return _mergeable(name, record)
    path = Path(name).expanduser()
    if not path.exists():
        raise PostTrainingInputError(f"merge source {name!r}: no such folder")
    return path


def _mergeable(name: str, record: Any) -> Path:
    """A registered model's folder, when it is something a merge can read."""
    unmergeable = {"prompt": "a prompt", "gguf": "a GGUF file"}
    what = unmergeable.get(record.kind or "") or unmergeable.get(record.format or "")
    if what:
        raise PostTrainingInputError(
            f"merge source {name} is {what}; merges take safetensors models or LoRA adapters "
            "(see finetune-agent models list: format safetensors or peft)"
        )
    path = Path(record.path)
    if not path.exists():
        raise PostTrainingInputError(f"merge source {name}: its files at {path} no longer exist")
    return path


def run_merge_step(state: dict[str, Any], context: Any) -> Callable[..., list[dict[str, Any]]]:
    """The stage's merge step for this run: sources resolved (the run's adapter when it trained
    one, else its full model; 'run' first when not listed, the list validation checked), the
    merge made and gated on `merge.held_out`."""

    def step(
        spec: MergeSpec, *, rows: list[dict[str, Any]], output_dir: Path, say
    ) -> list[dict[str, Any]]:
        from phases.post_training.merge_search import merge_and_gate

        config = state["config"]
        artifact = current_artifact(state) or {}
        own = Path(artifact["path"]) if artifact.get("kind") == "adapter" else Path(rows[0]["path"])
        names = run_merged_sources(spec.sources)
        sources = [(name, resolve_source(name, context.store, own)) for name in names]
        from phases.evaluation.config import EvaluationConfig
        from phases.post_training.config import ReleaseGates

        base = spec.base or config["model"]["name_or_path"]
        gates = ReleaseGates.model_validate(config["post_training"]["gates"])
        row = merge_and_gate(
            spec.model_copy(update={"sources": names}),
            sources,
            output_dir=output_dir,
            evaluation=EvaluationConfig.model_validate(config["evaluation"]),
            index=len(rows),
            min_gain=gates.merge_min_gain,
            parent_index=0,
            base=_base_path(base, context.models_cache),
            cache_dir=context.models_cache,
            say=say,
        )
        return [row]

    return step


def _base_path(name: str, cache_dir: Path) -> Path | None:
    """A base model reference as a folder mergekit can read (built-ins built once)."""
    from models.loading import resolve_model_path

    try:
        return Path(resolve_model_path(name, cache_dir=cache_dir))
    except Exception:  # a hub id not in the cache: only ties-like merges need it, and say so
        return None
