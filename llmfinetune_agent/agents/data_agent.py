"""The data generator agent: validates, de-duplicates and splits the seed data (always), then
generates synthetic examples when the config enables it.

Generation itself arrives with the synthesis phase; until then an enabled generator says so
plainly in the data report and at the data gate instead of inventing examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmfinetune_agent.agents.common import emit, models_cache, run_config
from llmfinetune_agent.direct import prepare_direct
from llmfinetune_agent.state import RunState


def data_generator(state: RunState) -> dict[str, Any]:
    """Graph node: prepare the seed data first; on the second visit, generate (when enabled)."""
    if not state.get("data"):
        data, plan = prepare_seed_data(state)
        return {"data": data, "plan": plan}
    emit("agent", agent="data_generator", message="synthetic data generation is not available")
    generation = {
        "status": "unavailable",
        "generated": 0,
        "kept": 0,
        "message": (
            "Synthetic data generation is not available in this version; "
            "training uses the seed data only."
        ),
    }
    return {"data": {**state["data"], "generation_done": True, "generation": generation}}


def prepare_seed_data(state: RunState) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate and split the configured data with the base model's tokenizer; plan the cost."""
    from models import resolve_device
    from models.inspection import count_parameters
    from phases.training import estimate_training

    config = run_config(state)
    emit("agent", agent="data_generator", message=f"validating {config.data.train}")
    data = prepare_direct(config, Path(state["run_dir"]))
    plan = estimate_training(
        config.training,
        num_examples=data["train_rows"],
        mean_tokens=data["report"]["token_stats"].get("mean", 0.0),
        num_parameters=count_parameters(config.model, cache_dir=models_cache()),
        device=resolve_device(config.model.device),
    )
    emit("data_report", summary=data["summary"])
    return data, plan
