"""The improvement loop's bookkeeping: which fixes a decision picks, the record an iteration
leaves behind, and the iteration table of the run report.

Pure functions of state (no LangGraph): the gates, the orchestrator, `describe_run` and the
model card share them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from llmfinetune_agent.config import _deep_merge, changed_sections
from llmfinetune_agent.sections import (
    LENGTH_KEYS,
    SECTIONS,
    sections_route,
    trained_inputs,
    untrained_sections,
)
from llmfinetune_agent.state import RunState

SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}
# Approvals that belong to one iteration: the next one asks again.
PER_ITERATION_GATES = ("approve_evaluation", "approve_fixes")
DIAGNOSIS_KEYS = ("index", "kind", "severity", "summary", "evidence", "patch", "route")
# How a fix starts the next iteration ('reevaluate': the patch changes nothing trained).
IterationRoute = Literal["regenerate_data", "retrain", "continue", "reevaluate"]
ASKABLE_ROUTES = ("retrain", "continue")  # what a human may ask for at approve_fixes
RESUMABLE = ("completed", "paused")


class FixSelectionError(ValueError):
    """A fixes decision that selects nothing applicable."""


def decision_record(state: RunState, gate: str, value: dict[str, Any]) -> dict[str, Any]:
    """The decision log entry of a (validated) decision at `gate`."""
    return {
        "gate": gate,
        "decision": value["decision"],
        "patch": value["edits"],
        "comment": value["comment"],
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "iteration": state.get("iteration", 1),
    }


def fixable(diagnoses: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Diagnoses that carry a validated config patch."""
    return [d for d in diagnoses or [] if d.get("patch")]


def fixes_patch(diagnoses: list[dict[str, Any]], decision: dict[str, Any]) -> dict[str, Any]:
    """The config patch a decision applies: the selected diagnoses' patches (all by default on
    approve, none by default on edit), merged least severe first so errors win a conflict,
    then the human's own edits on top."""
    chosen = sorted(
        chosen_diagnoses(diagnoses, decision), key=lambda d: SEVERITY_ORDER[d["severity"]]
    )
    patch: dict[str, Any] = {}
    for diagnosis in chosen:
        patch = _deep_merge(patch, diagnosis.get("patch") or {})
    patch = _deep_merge(patch, decision.get("edits") or {})
    if not patch and not fixable(diagnoses):
        raise FixSelectionError(
            "nothing to apply: the debugger proposed no fix. Give your own patch with edit "
            '(e.g. --edit \'{"training": {"epochs": 2}}\'), or reject to end the run'
        )
    if not patch:
        raise FixSelectionError(
            "nothing to apply: the selected diagnoses carry no patch; select others, give an "
            "edit, or reject"
        )
    return patch


def chosen_diagnoses(
    diagnoses: list[dict[str, Any]], decision: dict[str, Any]
) -> list[dict[str, Any]]:
    """The diagnoses a decision selects: `select` by index, else every fixable one on approve
    and none on edit."""
    by_index = {d["index"]: d for d in diagnoses}
    select = decision.get("select")
    if select is None:
        select = (
            [d["index"] for d in fixable(diagnoses)] if decision["decision"] == "approve" else []
        )
    unknown = [i for i in select if i not in by_index]
    if unknown:
        raise FixSelectionError(f"no diagnosis with index {unknown}; indexes are {list(by_index)}")
    return [by_index[i] for i in select]


def requested_route(diagnoses: list[dict[str, Any]], decision: dict[str, Any]) -> str | None:
    """The route asked for: the decision's own `route`, else 'continue' when a chosen diagnosis
    proposes it (feasibility is `choose_route`'s business), else None (follow the patch)."""
    if decision.get("route"):
        return decision["route"]
    chosen = chosen_diagnoses(diagnoses, decision)
    return "continue" if any(d.get("route") == "continue" for d in chosen) else None


def choose_route(
    state: RunState, new_config: dict[str, Any], requested: str | None
) -> tuple[IterationRoute, str, dict[str, Any] | None]:
    """(route, reason, warm_start) for the iteration a patch starts.

    The patched sections decide first: a data section means preparing the data again; no
    training or model change means evaluating the same model again. A training change
    retrains from the base model, or, when 'continue' is asked for and possible, trains on
    from the previous iteration's last checkpoint (`warm_start` says from where)."""
    old = state["config"]
    sections = changed_sections(old, new_config)
    implied = sections_route(sections)
    if implied == "regenerate_data":
        data_changed = [s for s in sections if SECTIONS[s].route == "regenerate_data"]
        why = "the data is prepared again, then the model is trained from the base model"
        return "regenerate_data", f"the patch changes {', '.join(data_changed)}: {why}", None
    if implied is None:
        return (
            "reevaluate",
            "the patch changes no training setting: the same model is evaluated again",
            None,
        )
    if requested != "continue":
        asked = " as asked" if requested == "retrain" else ""
        return (
            "retrain",
            f"the patch changes {', '.join(sections)}: retrain from the base model{asked}",
            None,
        )
    problem = continue_problem(state, new_config, sections)
    if problem:
        return (
            "retrain",
            f"continuing is not possible ({problem}): retrain from the base model",
            None,
        )
    training, iteration = state["training"], state.get("iteration", 1)
    step = int(training["global_step"])
    warm_start = {
        "checkpoint": training["checkpoint_path"],
        "from_iteration": iteration,
        "step": step,
        "key": continuation_key(old, state["data"]["data_hash"]),
    }
    reason = (
        f"continue from iteration {iteration}'s checkpoint at step {step} (same weights and "
        "optimizer state) to the longer schedule"
    )
    return "continue", reason, warm_start


def continue_problem(
    state: RunState, new_config: dict[str, Any], sections: list[str]
) -> str | None:
    """Why the next iteration cannot train on from this one's last checkpoint (None: it can)."""
    from phases.training.checkpoints import checkpoint_step, damaged_files, is_valid_checkpoint

    training, iteration = state.get("training") or {}, state.get("iteration", 1)
    if training.get("status") not in RESUMABLE:
        status = training.get("status") or "not trained"
        return f"iteration {iteration}'s training is {status}, so its weights are no start point"
    checkpoint = training.get("checkpoint_path")
    if not checkpoint or not is_valid_checkpoint(Path(checkpoint)):
        return f"iteration {iteration} left no usable checkpoint"
    if damaged_files(Path(checkpoint)):
        return f"iteration {iteration}'s last checkpoint has damaged files"
    if checkpoint_step(Path(checkpoint)) != training.get("global_step"):
        return f"iteration {iteration}'s newest checkpoint is not at its last step"
    other = [s for s in sections if s not in ("training", *untrained_sections())]
    if other:
        return f"the patch changes {', '.join(other)}"
    old_t, new_t = state["config"]["training"], new_config["training"]
    changed = [k for k in old_t if old_t[k] != new_t.get(k) and k not in LENGTH_KEYS]
    if changed:
        return "the patch changes " + ", ".join(f"training.{k}" for k in changed)
    if new_t.get("max_steps"):
        longer = new_t["max_steps"] > training["global_step"]
    else:
        longer = not old_t.get("max_steps") and new_t["epochs"] > old_t["epochs"]
    if not longer:
        return "the patch does not lengthen the training schedule"
    return None


def continuation_key(config: dict[str, Any], data_hash: str) -> str:
    """What must stay equal for a checkpoint to be continued: the data and everything that
    shapes the trained weights (the sections table's `trained` fields) but the schedule's
    length."""
    return json.dumps([trained_inputs(config, drop=LENGTH_KEYS), data_hash], sort_keys=True)


def usable_warm_start(state: RunState) -> dict[str, Any] | None:
    """The state's warm start if it still fits the current config and data (an edit or a fork
    since may have changed them: then training starts from the base model)."""
    warm_start, data = state.get("warm_start"), state.get("data") or {}
    if not warm_start or not data.get("data_hash"):
        return None
    if warm_start.get("key") != continuation_key(state["config"], data["data_hash"]):
        return None
    return warm_start


def fix_decision(state: RunState) -> dict[str, Any] | None:
    """The approve_fixes decision that started the current iteration (None for the first)."""
    iteration = state.get("iteration", 1)
    started = [
        d
        for d in state.get("decisions") or []
        if d.get("gate") == "approve_fixes"
        and d.get("iteration") == iteration - 1
        and d.get("decision") != "reject"
    ]
    return started[-1] if started else None


def reviewer_rejection(state: RunState) -> dict[str, Any] | None:
    """The reviewer's reject decision at the current iteration's evaluation gate (None when
    the evaluation was not rejected)."""
    if (state.get("approved") or {}).get("approve_evaluation") is not False:
        return None
    iteration = state.get("iteration", 1)
    rejects = [
        d
        for d in state.get("decisions") or []
        if d.get("gate") == "approve_evaluation"
        and d.get("iteration") == iteration
        and d.get("decision") == "reject"
    ]
    return rejects[-1] if rejects else None


def iteration_record(state: RunState, fix: dict[str, Any] | None) -> dict[str, Any]:
    """What one iteration leaves behind: the patch that started it, its metrics, training
    outcome, diagnoses and decisions, the reviewer's comment when the evaluation was
    rejected, and the `fix` that starts the next one."""
    iteration = state.get("iteration", 1)
    evaluation, training = state.get("evaluation") or {}, state.get("training") or {}
    started = fix_decision(state) or {}
    rejection = reviewer_rejection(state)
    return {
        "iteration": iteration,
        "config_patch": current_patch(state),
        "route": started.get("route"),
        "route_reason": started.get("route_reason"),
        "rejected": rejection is not None,
        "reviewer_comment": rejection["comment"] if rejection else None,
        "training": {
            k: training.get(k)
            for k in (
                "status",
                "global_step",
                "total_steps",
                "resumed_from_step",
                "continued_from",
                "train_loss",
                "diverged_at_step",
            )
        },
        "metrics": {"base": evaluation.get("base") or {}, "tuned": evaluation.get("tuned") or {}},
        "not_finite": evaluation.get("not_finite") or [],
        # A diverged training is evaluated at its last checkpoint before the blow-up.
        "evaluated_checkpoint_step": evaluation.get("checkpoint_step"),
        "passed": evaluation.get("passed"),
        "diagnoses": [{k: d.get(k) for k in DIAGNOSIS_KEYS} for d in state.get("diagnoses") or []],
        "decisions": [d for d in state.get("decisions", []) if d.get("iteration") == iteration],
        "fix": fix,
    }


def current_patch(state: RunState) -> dict[str, Any] | None:
    """The patch that started the current iteration (None for the first)."""
    past = state.get("iterations") or []
    return past[-1]["fix"] if past else None


def all_iterations(state: RunState) -> list[dict[str, Any]]:
    """Finished iterations plus the current one (its `fix` is None: nothing applied yet)."""
    past = list(state.get("iterations") or [])
    if not state.get("config"):
        return past
    return [*past, {**iteration_record(state, None), "current": True}]


def iterations_table(iterations: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per iteration with its patch, training, metrics and problems."""
    names = sorted({m for it in iterations for m in it["metrics"]["tuned"]})
    head = ["iteration", "route", "config patch", "training", *names, "diagnoses", "review"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for it in iterations:
        training = it["training"]
        trained = training.get("status") or "—"
        if training.get("resumed_from_step") and training.get("continued_from"):
            trained += f" from step {training['resumed_from_step']}"
        if training.get("diverged_at_step") is not None:
            trained += f" at step {training['diverged_at_step']}"
        if it.get("evaluated_checkpoint_step") is not None:
            trained += f", evaluated at step {it['evaluated_checkpoint_step']}"
        if training.get("train_loss") is not None:
            trained += f" (loss {training['train_loss']:.3g})"
        cells = [
            str(it["iteration"]),
            it.get("route") or "—",
            _flat(it["config_patch"]) or "—",
            trained,
            *[
                "not finite"
                if f"tuned.{n}" in it.get("not_finite", [])
                else _number(it["metrics"]["tuned"].get(n))
                for n in names
            ],
            ", ".join(f"{d['kind']} ({d['severity']})" for d in it["diagnoses"]) or "—",
            _review(it),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _review(iteration: dict[str, Any]) -> str:
    """The review cell: whether the reviewer rejected the iteration, and their comment."""
    if not iteration.get("rejected"):
        return "—"
    comment = " ".join((iteration.get("reviewer_comment") or "").split()).replace("|", "\\|")
    return f'rejected: "{comment}"' if comment else "rejected"


def _flat(patch: dict[str, Any] | None, prefix: str = "") -> str:
    if not patch:
        return ""
    parts = []
    for key, value in patch.items():
        if isinstance(value, dict):
            parts.append(_flat(value, f"{prefix}{key}."))
        else:
            parts.append(f"`{prefix}{key}={value}`")
    return ", ".join(parts)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "—"


def write_iterations_report(state: RunState) -> list[str]:
    """Write `iterations.md` (every iteration so far, the current one included) into the run
    directory; returns the table's lines (empty, and nothing written, before iteration 2)."""
    iterations = all_iterations(state)
    if len(iterations) < 2:
        return []
    table = iterations_table(iterations)
    lines = ["# Improvement iterations", "", *table, ""]
    Path(state["run_dir"], "iterations.md").write_text("\n".join(lines))
    return table
