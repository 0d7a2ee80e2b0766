"""Resolve the `reward_model` rewards of a GRPO/RLOO run: a registry id becomes its folder.

`training.rewards[i].model` may be `model:<id>`, a bare registry id, or a folder. The training
phase only reads folders; resolving ids is orchestration (the registry lives in the run store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmfinetune_agent.run_store import RunStore
from phases.training.data import TrainingInputError

REGISTRY_PREFIX = "model:"


def reward_model_path(name: str, store: RunStore, where: str) -> str:
    """The folder of the reward model `name` names; TrainingInputError naming `where` if the
    registry has no such model or it is not a reward model."""
    model_id = name.removeprefix(REGISTRY_PREFIX)
    record = store.get_model(model_id=model_id)
    if record is None:
        if name.startswith(REGISTRY_PREFIX) or not Path(name).expanduser().exists():
            raise TrainingInputError(
                f"{where}: {name!r} is neither a registered model (see `finetune-agent models "
                "list`) nor a folder. Train a reward model (method 'reward') and name its id."
            )
        return name
    if record.kind != "reward_model" and record.parameters.get("method") != "reward":
        raise TrainingInputError(
            f"{where}: registered model {model_id!r} is a {record.kind}, not a reward model; "
            "name a model trained with method 'reward'."
        )
    return record.path


def with_resolved_reward_models(training: Any, store: RunStore) -> Any:
    """`training` (a config model) with every `reward_model` reward's `model` as a folder."""
    rewards = getattr(training, "rewards", None)
    if not rewards or not any(r.function == "reward_model" for r in rewards):
        return training
    resolved = [
        r.model_copy(
            update={"model": reward_model_path(r.model, store, f"training.rewards[{i}].model")}
        )
        if r.function == "reward_model"
        else r
        for i, r in enumerate(rewards)
    ]
    return training.model_copy(update={"rewards": resolved})
