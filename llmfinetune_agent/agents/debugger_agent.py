"""The debugger agent: diagnoses a run that diverged, missed its thresholds, or was rejected.

It reads everything the iteration produced (training log history, data report and the rows
trained on, base-vs-tuned metrics and predictions, a short generation probe), runs the
diagnosis phase, and validates every proposed patch against `RunConfig`: a patch that does not
validate, or changes nothing, is dropped and the reason kept with the diagnosis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.config import ConfigError, RunConfig, apply_patch
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.sections import patch_route
from llmfinetune_agent.state import RunState

PROBE_EXAMPLES = 4


def debugger(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: diagnose the current iteration; each diagnosis gets an `index` to select."""
    from phases.diagnosis import diagnose_run, read_json, read_rows

    config = run_config(state)
    data, training = state.get("data") or {}, state.get("training") or {}
    evaluation = state.get("evaluation") or {}
    emit("agent", agent="debugger", message="diagnosing the run")
    eval_report = read_json((evaluation.get("files") or {}).get("json")) or {}
    found = diagnose_run(
        config=config,
        log_history=read_json(training.get("log_history_path")) or [],
        training=training,
        data_report=read_json(data.get("report_path")),
        train_rows=read_rows(data.get("train_path")),
        eval_rows=read_rows(data.get("eval_path")),
        evaluation=evaluation,
        predictions=(eval_report.get("tuned") or {}).get("predictions"),
        generation=_probe(config, data, training, run_context(runtime).models_cache),
    )
    diagnoses = [
        {"index": i, **with_route(validated_patch(config, d.model_dump(mode="json")))}
        for i, d in enumerate(found)
    ]
    for d in diagnoses:
        emit(
            "diagnosis",
            **{k: d[k] for k in ("index", "severity", "summary", "patch")},
            problem=d["kind"],
        )
    return {"diagnoses": diagnoses}


def validated_patch(config: RunConfig, diagnosis: dict[str, Any]) -> dict[str, Any]:
    """The diagnosis with its patch kept only if it validates and changes the config."""
    patch = diagnosis.get("patch")
    if not patch:
        return diagnosis
    try:
        patched = apply_patch(config, patch)
    except ConfigError as exc:
        return {**diagnosis, "patch": None, "patch_rejected": f"invalid: {exc}"}
    if patched == config:
        return {**diagnosis, "patch": None, "patch_rejected": "it changes nothing"}
    return diagnosis


def with_route(diagnosis: dict[str, Any]) -> dict[str, Any]:
    """The diagnosis with the route its fix takes: its own, else the one its patch implies
    (None without a patch)."""
    patch = diagnosis.get("patch")
    route = (diagnosis.get("route") or patch_route(patch)) if patch else None
    return {**diagnosis, "route": route}


def _probe(
    config: RunConfig, data: dict[str, Any], training: dict[str, Any], cache_dir: Path
) -> dict | None:
    """A few generations with the tuned model (for never_stops and preference_never_ends);
    None when there is no model."""
    from phases.diagnosis import probe_generation

    model_path, eval_path = training.get("model_path"), data.get("eval_path")
    if (
        not model_path
        or not eval_path
        or data.get("kind") not in ("chat", "prompt_completion", "preference")
    ):
        return None
    if not data.get("eval_rows"):
        return None
    return probe_generation(
        model_path,
        Path(eval_path),
        max_new_tokens=config.evaluation.max_new_tokens,
        base_model=config.model,
        limit=PROBE_EXAMPLES,
        cache_dir=cache_dir,
    )
