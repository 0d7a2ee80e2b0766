"""The apply_fixes node: starts the next improvement iteration from a fixes decision.

The fixes gate only asks and leaves the reviewer's answer in `fix_request`; with approve_fixes
off the routing policy comes here directly and the debugger's fixes are applied as approved.
Applying a patch (here, or an edit at any gate through `apply_edit`) drops what the sections
table says the patched sections make stale, so the policy routes to data preparation,
retraining or re-evaluation as the patch requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmfinetune_agent.config import ConfigError, RunConfig, apply_patch, changed_sections
from llmfinetune_agent.improvement import (
    PER_ITERATION_GATES,
    FixSelectionError,
    choose_route,
    decision_record,
    fixes_patch,
    iteration_record,
    requested_route,
    write_iterations_report,
)
from llmfinetune_agent.sections import reset_approvals, stale_results
from llmfinetune_agent.state import RunState

AUTO_APPROVE = {"decision": "approve", "edits": None, "comment": ""}


def apply_fixes_node(state: RunState) -> dict[str, Any]:
    """Graph node: apply the reviewer's fixes decision (or, unasked, every proposed fix)."""
    asked = state.get("fix_request")
    try:
        update = apply_fixes(state, asked or AUTO_APPROVE)
    except (FixSelectionError, ConfigError) as exc:
        if asked is None:  # the debugger's own patch does not apply: nothing left to try
            reason = f"the debugger's fixes cannot be applied: {exc}"
            return {"outcome": "failed", "reason": reason}
        why = f"invalid decision ignored: {exc}"  # the gate asks again
        return {"fix_request": None, "log": [{"next": "gate_fixes", "reason": why}]}
    return {**update, "fix_request": None}


def apply_fixes(state: RunState, value: dict[str, Any]) -> dict[str, Any]:
    """Start the next iteration: apply the chosen patch, keep a record of this iteration, and
    drop the results and per-iteration approvals the patch makes stale. On the 'continue'
    route a `warm_start` makes the trainer start from this iteration's last checkpoint
    instead of the base model."""
    diagnoses = state.get("diagnoses") or []
    patch = fixes_patch(diagnoses, value)
    new = apply_patch(RunConfig.model_validate(state["config"]), patch)
    route, reason, warm_start = choose_route(
        state, new.model_dump(mode="json"), requested_route(diagnoses, value)
    )
    decision = {
        **decision_record(state, "approve_fixes", value),
        "patch": patch,
        "route": route,
        "route_reason": reason,
    }
    if value.get("select") is not None:
        decision["select"] = value["select"]
    if value.get("route") is not None:
        decision["asked_route"] = value["route"]
    approved = {
        k: v
        for k, v in (state.get("approved") or {}).items()
        if k not in PER_ITERATION_GATES and not k.startswith("training_checkpoint@")
    }
    update = apply_edit(state, patch, approved)
    if warm_start is not None:
        update.update(warm_start=warm_start, training=None, artifact=None)
    record_state = {**state, "decisions": [*state.get("decisions", []), decision]}
    update.update(
        decisions=[decision],
        iterations=[iteration_record(record_state, patch)],
        iteration=state.get("iteration", 1) + 1,
        diagnoses=None,
        evaluation=None,
    )
    after = {**state, **update, "iterations": [*state.get("iterations", []), *update["iterations"]]}
    write_iterations_report(after)
    return update


def apply_edit(state: RunState, patch: dict[str, Any], approved: dict[str, bool]) -> dict[str, Any]:
    """The state update of a validated patch: the new config, the results it makes stale
    dropped (so they are redone) and `approved` without the approvals it resets."""
    old = RunConfig.model_validate(state["config"])
    new = apply_patch(old, patch)
    sections = changed_sections(old, new)
    update: dict[str, Any] = {
        "config": new.model_dump(mode="json"),
        "approved": reset_approvals(approved, sections),
    }
    for result in stale_results(sections):
        update[result] = None
    if "training" in update:
        update["warm_start"] = None  # retrain from the base unless a fix says otherwise
    Path(state["run_dir"], "config.json").write_text(new.model_dump_json(indent=2))
    return update
