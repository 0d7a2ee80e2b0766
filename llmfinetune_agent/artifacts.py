"""Artifacts: what training (and, later, post-training) produces, as small records in state.

An artifact is `{kind, path, parent, iteration, step}`: `kind` says how to load, evaluate and
export it (`adapter`: a PEFT adapter over `parent`; `model`: full weights; `reward_model`: a
scorer of responses, full or LoRA; `prompt`, `quantized`, `gguf`: for the stages that make
them), `parent` is what it was made from.
The evaluator, finalize and the stages after training dispatch on `kind`, never on a path.
"""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import NotRequired, TypedDict

ArtifactKind = Literal["model", "adapter", "reward_model", "prompt", "quantized", "gguf"]


class Artifact(TypedDict):
    """One thing a stage of the run produced."""

    kind: ArtifactKind
    """How to load, evaluate and export it."""
    path: str
    """Where it lies (a folder, or a file for a prompt or a GGUF)."""
    parent: str
    """What it was made from: the base model, a checkpoint, or another artifact's path."""
    iteration: NotRequired[int]
    """The improvement iteration that made it."""
    step: NotRequired[int | None]
    """The training step it was taken at."""


def trained_artifact(state: dict[str, Any], training: dict[str, Any] | None) -> Artifact | None:
    """What a training segment produced: the trained adapter or model when it completed, its
    last checkpoint when it diverged, None otherwise (paused, cancelled, nothing saved)."""
    if not training:
        return None
    status, config = training.get("status"), state["config"]
    path = {"completed": training.get("model_path"), "diverged": training.get("checkpoint_path")}
    if not path.get(status):
        return None
    return {
        "kind": trained_kind(config["training"]),
        "path": path[status],
        "parent": training.get("continued_from") or config["model"]["name_or_path"],
        "iteration": state.get("iteration", 1),
        "step": training.get("global_step"),
    }


def trained_kind(training: dict[str, Any]) -> ArtifactKind:
    """What a training section makes: a reward model, a prompt (weights frozen), else an
    adapter (LoRA) or full weights."""
    if training.get("method") == "reward":
        return "reward_model"
    if training.get("method") == "prompt":
        return "prompt"
    return "adapter" if training.get("lora") else "model"


def current_artifact(state: dict[str, Any]) -> Artifact | None:
    """The run's newest artifact (a state saved before artifacts existed: from its training)."""
    return state.get("artifact") or trained_artifact(state, state.get("training"))
