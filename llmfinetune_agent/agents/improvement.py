"""The improvement loop's bookkeeping: which fixes a decision picks, the record an iteration
leaves behind, and the iteration table of the run report.

Pure functions of state (no LangGraph): the gates, the orchestrator, `describe_run` and the
model card share them."""

from __future__ import annotations

from typing import Any

from llmfinetune_agent.config import _deep_merge
from llmfinetune_agent.state import RunState

SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}
# Approvals that belong to one iteration: the next one asks again.
PER_ITERATION_GATES = ("approve_evaluation", "approve_fixes")
DIAGNOSIS_KEYS = ("index", "kind", "severity", "summary", "evidence", "patch")


class FixSelectionError(ValueError):
    """A fixes decision that selects nothing applicable."""


def fixable(diagnoses: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Diagnoses that carry a validated config patch."""
    return [d for d in diagnoses or [] if d.get("patch")]


def fixes_patch(diagnoses: list[dict[str, Any]], decision: dict[str, Any]) -> dict[str, Any]:
    """The config patch a decision applies: the selected diagnoses' patches (all by default on
    approve, none by default on edit), merged least severe first so errors win a conflict,
    then the human's own edits on top."""
    by_index = {d["index"]: d for d in diagnoses}
    select = decision.get("select")
    if select is None:
        select = (
            [d["index"] for d in fixable(diagnoses)] if decision["decision"] == "approve" else []
        )
    unknown = [i for i in select if i not in by_index]
    if unknown:
        raise FixSelectionError(f"no diagnosis with index {unknown}; indexes are {list(by_index)}")
    chosen = sorted((by_index[i] for i in select), key=lambda d: SEVERITY_ORDER[d["severity"]])
    patch: dict[str, Any] = {}
    for diagnosis in chosen:
        patch = _deep_merge(patch, diagnosis.get("patch") or {})
    patch = _deep_merge(patch, decision.get("edits") or {})
    if not patch:
        raise FixSelectionError(
            "nothing to apply: the selected diagnoses carry no patch; select others, give an "
            "edit, or reject"
        )
    return patch


def iteration_record(state: RunState, fix: dict[str, Any] | None) -> dict[str, Any]:
    """What one iteration leaves behind: the patch that started it, its metrics, training
    outcome, diagnoses and decisions, and the `fix` that starts the next one."""
    iteration = state.get("iteration", 1)
    evaluation, training = state.get("evaluation") or {}, state.get("training") or {}
    return {
        "iteration": iteration,
        "config_patch": current_patch(state),
        "training": {
            k: training.get(k) for k in ("status", "global_step", "train_loss", "diverged_at_step")
        },
        "metrics": {"base": evaluation.get("base") or {}, "tuned": evaluation.get("tuned") or {}},
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
    head = ["iteration", "config patch", "training", *names, "diagnoses"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for it in iterations:
        training = it["training"]
        trained = training.get("status") or "—"
        if training.get("train_loss") is not None:
            trained += f" (loss {training['train_loss']:.3g})"
        cells = [
            str(it["iteration"]),
            _flat(it["config_patch"]) or "—",
            trained,
            *[_number(it["metrics"]["tuned"].get(n)) for n in names],
            ", ".join(f"{d['kind']} ({d['severity']})" for d in it["diagnoses"]) or "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


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
