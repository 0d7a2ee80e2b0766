"""The plan an edit at the plan gate leads to, estimated before the run goes on.

An edit to the model or training section drops the approved plan; the run trains on without
showing a new one, so the CLI estimates it here from the gate's data report, with the same
`estimate_training` the data agent uses.
"""

from __future__ import annotations

from typing import Any

PLAN_SECTIONS = ("model", "data", "training")  # the sections an estimate depends on


def revised_estimate(
    config: dict[str, Any], edits: dict[str, Any], details: dict[str, Any]
) -> tuple[dict[str, Any], str] | None:
    """(estimate, note) for `config` with `edits` applied, from the plan gate's `details`;
    None when the edit is invalid (the runner says why) or changes nothing the plan depends on.
    """
    from llmfinetune_agent.config import ConfigError, RunConfig, apply_patch, changed_sections
    from phases.training import estimate_training

    try:
        old = RunConfig.model_validate(config)
        new = apply_patch(old, edits)
    except (ConfigError, ValueError):
        return None
    changed = [s for s in changed_sections(old, new) if s in PLAN_SECTIONS]
    if not changed:
        return None
    report = details.get("data_report") or {}
    num_parameters, device, note = _model_size(new)
    estimate = estimate_training(
        new.training,
        num_examples=int(report.get("train_rows") or 0),
        mean_tokens=float((report.get("token_stats") or {}).get("mean") or 0.0),
        num_parameters=num_parameters,
        device=device,
    )
    if "data" in changed:
        note = "the data is prepared again, so the step count may still change; " + note
    return estimate, note.strip("; ")


def _model_size(config: Any) -> tuple[int | None, str, str]:
    """(parameters, device, note) of the edited config's model; unknown when it cannot be read
    without loading it (the run itself will say why)."""
    from llmfinetune_agent.settings import Settings
    from models import ModelLoadError, resolve_device
    from models.inspection import count_parameters

    try:
        return (
            count_parameters(config.model, cache_dir=Settings.from_env().models_cache_dir),
            resolve_device(config.model.device),
            "",
        )
    # ModelLoadError: the folder or id is bad (a broken config.json, say); the run refuses it too.
    except (ModelLoadError, OSError, ValueError, RuntimeError) as exc:
        return None, "cpu", f"time and memory unknown until the model loads ({exc})"
