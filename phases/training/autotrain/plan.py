"""What the plan gate says about an AutoTrain run: the installed backend and its limits.

`autotrain_plan()` fails (BackendNotInstalled, with the install command) when the backend is
missing, so a run that asks for AutoTrain stops at the plan, before any compute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phases.training.autotrain.environment import require_autotrain
from phases.training.config import TrainingSettings


def autotrain_plan(
    config: TrainingSettings, *, training_checkpoints: list[float], backends_dir: Path
) -> dict[str, Any]:
    """The plan's `backend` entry: version, where it is, gates it cannot pause at, settings
    it does not use."""
    install = require_autotrain(backends_dir)
    return {
        "name": "autotrain",
        "version": install.version,
        "path": install.path,
        "gates_not_paused": list(training_checkpoints),
        "not_used": autotrain_unused(config),
    }


def autotrain_unused(config: TrainingSettings) -> list[str]:
    """The run's settings AutoTrain trains without, each with what it does instead."""
    unused = [
        "training.save_steps, training.eval_steps: AutoTrain saves no step checkpoints and "
        "evaluates nothing while training (the evaluator runs after it); a cancel keeps nothing",
        "hitl.training_checkpoints: AutoTrain trains to the end in one go",
    ]
    if config.method == "sft":
        unused.append(
            "training.packing, training.completion_only_loss, training.share_prefix: "
            "AutoTrain's SFT packs the examples "
            "into blocks of data.max_length tokens and takes the loss on the whole text (the "
            "estimate counts those blocks)"
        )
    return unused


def trained_sequences(
    config: TrainingSettings, examples: int, mean_tokens: float, *, max_length: int
) -> tuple[int, float]:
    """(sequences, tokens each) AutoTrain trains on: SFT packs the examples, each ended by one
    separator token, into full blocks of `max_length` (TRL 0.13's ConstantLengthDataset drops
    the last partial block); the other methods train on the examples as they are."""
    if config.method != "sft" or not mean_tokens:
        return examples, mean_tokens
    blocks = int(examples * (mean_tokens + 1) // max_length)
    return max(1, blocks), float(max_length)
