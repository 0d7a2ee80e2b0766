"""Gate nodes: each only asks a human (LangGraph `interrupt`) and records the answer.

A gate re-runs from its first line when resumed, so the payload is built from state alone
and nothing expensive happens here. One `interrupt()` per gate, never conditional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.types import interrupt

from llmfinetune_agent.agents.fixes_agent import apply_edit
from llmfinetune_agent.agents.gate_request import gate_payload
from llmfinetune_agent.config import ConfigError, RunConfig, apply_patch, is_local_path
from llmfinetune_agent.improvement import (
    ASKABLE_ROUTES,
    FixSelectionError,
    choose_route,
    decision_record,
    fixable,
    fixes_patch,
    requested_route,
    reviewer_rejection,
)
from llmfinetune_agent.routing import checkpoint_key
from llmfinetune_agent.sections import local_paths, looks_local
from llmfinetune_agent.state import RunState
from models import ModelLoadError
from models.loading import load_model_config
from phases.training.data import kind_advice

OPTIONS = ["approve", "reject", "edit"]
FIXES = ("approve_fixes",)


class DecisionError(ValueError):
    """A resume value that is not a valid decision for the pending gate."""


def validate_decision(value: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Check a resume value; return it normalized, or raise `DecisionError` saying what is wrong.

    Called by the runner before resuming (so an invalid edit keeps the run waiting) and by the
    gate itself as a second line of defence.
    """
    if not isinstance(value, dict):
        raise DecisionError("a decision is an object like {'decision': 'approve'}")
    decision = value.get("decision")
    if decision not in OPTIONS:
        raise DecisionError(f"decision must be one of {OPTIONS}, got {decision!r}")
    edits = value.get("edits") or None
    if edits is not None and decision != "edit":  # dropped silently, the edit would be lost
        raise DecisionError(f"edits go with decision 'edit', not with {decision!r}")
    if decision == "edit":
        if not isinstance(edits, dict) or not edits:
            raise DecisionError("an 'edit' decision needs 'edits': a config patch object")
        try:
            apply_patch(RunConfig.model_validate(config), edits)
        except ConfigError as exc:
            raise DecisionError(
                "the edit is not a valid config: " + "; ".join(map(str, exc.issues))
            ) from None
    comment = value.get("comment") or ""
    if not isinstance(comment, str):
        raise DecisionError("comment must be a string")
    normalized = {
        "decision": decision,
        "edits": edits if decision == "edit" else None,
        "comment": comment,
    }
    select = value.get("select")
    if select is not None:  # approve_fixes only: which diagnoses' patches to apply, by index
        if not isinstance(select, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in select
        ):
            raise DecisionError(
                "select must be a list of indexes (of diagnoses, or of release candidates), "
                "e.g. [0, 2]"
            )
        normalized["select"] = select
    route = value.get("route")
    if route is not None:  # approve_fixes only: how the next iteration trains
        if route not in ASKABLE_ROUTES:
            raise DecisionError(f"route must be one of {list(ASKABLE_ROUTES)}, got {route!r}")
        normalized["route"] = route
    if decision == "reject" and ("select" in normalized or "route" in normalized):
        # Dropped silently before (the CLI refused them): a reject applies and registers nothing.
        raise DecisionError("select and route go with decision 'approve' or 'edit', not 'reject'")
    return normalized


def _payload(
    kind: str,
    message: str,
    details: dict[str, Any],
    default: str = "approve",
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The interrupt value (`gate_request.gate_payload`); `default` is the answer a prompt
    offers when the user just hits enter ("reject" when the evaluation missed its thresholds),
    `summary` the few facts to decide on (the scalar details when not given)."""
    return gate_payload(kind, message, details, options=OPTIONS, default=default, summary=summary)


def _record(state: RunState, gate: str, key: str, value: Any, reject_ends: bool) -> dict[str, Any]:
    """Apply a decision to state: approvals, the decision log, edits (with invalidation)."""
    try:
        value = validate_decision(value, state["config"])
    except DecisionError as exc:
        # Only reachable when someone bypasses the runner; keep waiting rather than guess.
        return {"log": [{"next": gate, "reason": f"invalid decision ignored: {exc}"}]}
    decision = decision_record(state, gate, value)
    approved = dict(state.get("approved", {}))
    approved[key] = value["decision"] != "reject"
    update: dict[str, Any] = {"decisions": [decision], "approved": approved}
    if value["decision"] == "reject" and reject_ends:
        why = f": {value['comment']}" if value["comment"] else ""
        update.update(outcome="cancelled", reason=f"rejected at {gate}{why}")
    if value["decision"] == "edit":
        update.update(apply_edit(state, value["edits"], approved))
    return update


def gate_plan(state: RunState) -> dict[str, Any]:
    """Ask to approve the plan: model, data report, method, estimated cost."""
    config, data, plan = state["config"], state.get("data") or {}, state.get("plan") or {}
    details = {
        "model": config["model"]["name_or_path"],
        "method": config["training"]["method"],
        "lora": config["training"]["lora"],
        "data_report": data.get("report", {}),
        "estimate": plan,
        "acceptance": plan.get("acceptance"),
    }
    rl_note = ""
    if config["training"].get("rewards"):
        details["rewards"] = rl_plan(config["training"])
        rl_note = " " + details["rewards"]["text"]
    steps = plan.get("total_steps", "?")
    length = f"{steps} steps"
    if plan.get("prompt_search"):  # a prompt run counts metric calls and cannot pause
        length = f"{plan['prompt_search']}; no training checkpoint gate"
    message = (
        f"Plan: {config['training']['method'].upper()} on {config['model']['name_or_path']} "
        f"with {data.get('train_rows', '?')} training examples, about {length}."
        f"{rl_note}{_backend_note(plan.get('backend'))}"
        + "".join(f" Warning: {w}." for w in plan.get("warnings") or [])
        + " Approve?"
    )
    summary = {
        "model": config["model"]["name_or_path"],
        "method": _method_text(config["training"]),
        "train_examples": data.get("train_rows"),
        "eval_examples": data.get("eval_rows"),
        "steps": plan.get("total_steps"),
        **({"metric_calls": plan["metric_calls"]} if "metric_calls" in plan else {}),
        "time_seconds": plan.get("seconds"),
        "memory_gb": plan.get("memory_gb"),
        "acceptance": plan.get("acceptance"),
    }
    value = interrupt(_payload("approve_plan", message, details, summary=summary))
    return _record(state, "approve_plan", "approve_plan", value, reject_ends=True)


def _backend_note(backend: dict[str, Any] | None) -> str:
    """The plan message's words on a backend other than TRL (AutoTrain cannot pause)."""
    if not backend:
        return ""
    note = f" Trained by AutoTrain {backend['version']} in its own environment"
    paused = backend.get("gates_not_paused") or []
    if paused:
        at = ", ".join(f"{fraction:.0%}" for fraction in paused)
        note += f"; it cannot pause, so the training checkpoint gate at {at} is not asked"
    return note + "."


def gate_data(state: RunState) -> dict[str, Any]:
    """Ask to approve the final training data (counts and a sample)."""
    data = state.get("data") or {}
    details = {
        "train_rows": data.get("train_rows"),
        "eval_rows": data.get("eval_rows"),
        "kind": data.get("kind"),
        "sample": data.get("sample", []),
        "generation": data.get("generation"),
        "retrieval": data.get("retrieval"),
        "report": data.get("report", {}),
    }
    generated = (data.get("generation") or {}).get("message")
    knowledge = _retrieval_note(data.get("retrieval") or {})
    message = (
        f"Training data ready: {data.get('train_rows')} train / {data.get('eval_rows')} eval "
        f"examples ({data.get('kind')}). "
        + (f"{generated} " if generated else "")
        + (f"{knowledge} " if knowledge else "")
        + "Train on it?"
    )
    report, generation = data.get("report") or {}, data.get("generation") or {}
    summary = {
        "train_examples": data.get("train_rows"),
        "eval_examples": data.get("eval_rows"),
        "kind": data.get("kind"),
        "rows_dropped": report.get("rows_dropped"),
        "duplicates_removed": report.get("duplicates_removed"),
    }
    if generation:
        summary.update(_generation_summary(generation))
    value = interrupt(_payload("approve_data", message, details, summary=summary))
    return _record(state, "approve_data", "approve_data", value, reject_ends=True)


def _retrieval_note(retrieval: dict[str, Any]) -> str:
    """A sentence for the data gate's message when knowledge sources were skipped: with none
    readable, nothing was grounded on the user's documents, which the counts alone hide."""
    skipped = retrieval.get("unreadable_sources") or []
    if retrieval.get("status") == "empty":
        why = f" (skipped: {'; '.join(skipped[:3])}{'; ...' if len(skipped) > 3 else ''})"
        return (
            f"Knowledge retrieval found no passages in knowledge.sources"
            f"{why if skipped else ''}: no passage from your documents is used."
        )
    if skipped:
        return (
            f"Knowledge retrieval skipped {len(skipped)} unreadable source(s) "
            "(retrieval.unreadable_sources)."
        )
    return ""


def _generation_summary(generation: dict[str, Any]) -> dict[str, Any]:
    """The data gate's figures on generation: counts, keep and near-duplicate rates, and per
    field of the kept examples its distinct values and how many no seed has."""
    stats = generation.get("field_stats") or {}
    return {
        "generated": generation.get("generated"),
        "generated_kept": generation.get("kept"),
        "keep_rate": generation.get("keep_rate"),
        "near_duplicate_rate": generation.get("near_duplicate_rate"),
        "distinct_values": {name: s["distinct"] for name, s in stats.items()},
        "new_values": {name: s["new"] for name, s in stats.items()},
    }


def gate_training(state: RunState) -> dict[str, Any]:
    """Ask whether to continue a training run paused at a checkpoint fraction."""
    training = state.get("training") or {}
    fraction = training.get("fraction") or 0.0
    details = {
        "step": training.get("global_step"),
        "total_steps": training.get("total_steps"),
        "loss": training.get("train_loss"),
        "losses": training.get("recent_losses", []),
        "eta_seconds": training.get("eta_seconds"),
        "checkpoint": training.get("checkpoint_path"),
    }
    message = f"Training is {fraction:.0%} complete. Continue?"
    summary = {k: details[k] for k in ("step", "total_steps", "loss", "eta_seconds")}
    if training.get("recent_rewards"):  # an RL run: the reward curve and what it rewarded
        details["rewards"] = training["recent_rewards"]
        details["samples"] = training.get("sample_completions") or []
        details["reward_guard"] = training.get("reward_guard")
        summary["reward"] = training["recent_rewards"][-1]["reward"]
        guard = training.get("reward_guard")
        message = (
            f"Training is {fraction:.0%} complete, mean reward {summary['reward']:.3g}."
            + (f" {guard['message']}" if guard else "")
            + " Continue?"
        )
    value = interrupt(_payload("training_checkpoint", message, details, summary=summary))
    return _record(state, "training_checkpoint", checkpoint_key(fraction), value, reject_ends=True)


def gate_evaluation(state: RunState) -> dict[str, Any]:
    """Ask to accept the evaluation (base vs tuned, against thresholds)."""
    evaluation = state.get("evaluation") or {}
    details = {
        key: evaluation.get(key)
        for key in ("base", "tuned", "deltas", "thresholds", "passed", "acceptance", "report_path")
    }
    details["checks"] = evaluation.get("checks") or []
    details["examples"] = evaluation.get("examples") or []
    passed = bool(evaluation.get("passed"))
    failed = [c["summary"] for c in details["checks"] if not c.get("passed")]
    if passed:
        met = "; ".join(c["summary"] for c in details["checks"]) or (
            evaluation.get("acceptance") or "no thresholds set"
        )
        verdict, question = f"PASSED: {met}", "The tuned model meets its checks. Accept it?"
    else:
        reasons = failed or (evaluation.get("notes") or ["the evaluation did not pass"])[:1]
        verdict = "FAILED: " + "; ".join(reasons).rstrip(".")
        question = "The tuned model misses its checks. Accept it anyway?"
    message = f"{verdict}. {question} (reject sends it to the debugger)"
    default = "approve" if passed else "reject"
    summary = {"passed": passed, **_metric_changes(details)}
    value = interrupt(
        _payload("approve_evaluation", message, details, default=default, summary=summary)
    )
    return _record(state, "approve_evaluation", "approve_evaluation", value, reject_ends=False)


def gate_fixes(state: RunState) -> dict[str, Any]:
    """Ask which of the debugger's fixes to apply: approve all, `select` some by index, edit
    (your own patch, on top of any selected), or reject (ends the run). The answer goes to
    the apply_fixes node as `fix_request`."""
    diagnoses = state.get("diagnoses") or []
    fixes = fixable(diagnoses)
    rejection = reviewer_rejection(state)
    details = {
        "iteration": state.get("iteration", 1),
        "max_iterations": state["config"]["debugger"]["max_iterations"],
        "reviewer_comment": rejection["comment"] if rejection else None,
        "diagnoses": diagnoses,
        "proposed_patch": fixes_patch(diagnoses, {"decision": "approve"}) if fixes else None,
        **_proposed_route(state, diagnoses),
        "how": (
            'approve applies every proposed patch; add "select": [indexes] to apply only some; '
            "edit applies your own patch (plus any selected); reject ends the run. "
            'Add "route": "retrain" to train from the base model, or "continue" to train on '
            "from this iteration's last checkpoint (possible when the patch only lengthens "
            "the schedule)"
        ),
    }
    message = _fixes_message(state, diagnoses)
    # With nothing proposed, approving is refused: the prompt offers edit instead.
    summary = {
        "iteration": details["iteration"],
        "max_iterations": details["max_iterations"],
        "problems": ", ".join(f"#{d['index']} {d['kind']}" for d in diagnoses) or "none",
        "fixes_proposed": len(fixes),
        "route": details.get("proposed_route"),
    }
    default = "approve" if fixes else "edit"
    value = interrupt(_payload("approve_fixes", message, details, default, summary=summary))
    try:
        value = validate_gate_decision(value, state, "approve_fixes")
        if value["decision"] == "reject":
            return _record(state, "approve_fixes", "approve_fixes", value, reject_ends=True)
    except DecisionError as exc:
        return {"log": [{"next": "gate_fixes", "reason": f"invalid decision ignored: {exc}"}]}
    return {"fix_request": value}  # the apply_fixes node starts the next iteration


def rl_plan(training: dict[str, Any]) -> dict[str, Any]:
    """What an RL run (GRPO, RLOO) is rewarded by and how it samples, for the plan gate."""
    rewards = [
        {
            "function": r["function"],
            "weight": r["weight"],
            **({"model": r["model"]} if r.get("model") else {}),
        }
        for r in training["rewards"]
    ]
    named = ", ".join(f"{r['function']} x{r['weight']:g}" for r in rewards)
    text = (
        f"Rewards: {named}. {training['num_generations']} completions per prompt of up to "
        f"{training['max_completion_length']} tokens, "
        + ("vLLM" if training.get("use_vllm") else "no vLLM")
        + ", bf16 only on a GPU that has it"
        + (f", LoRA r {training['lora']['r']}." if training.get("lora") else ", all weights.")
    )
    return {"functions": rewards, "text": text, "guards": training.get("guards")}


def _method_text(training: dict[str, Any]) -> str:
    """'sft with LoRA r 16', 'sft, all weights' or 'prompt, weights frozen'."""
    lora = training.get("lora")
    if training["method"] == "prompt":
        return "prompt, weights frozen"
    return (
        f"{training['method']} with LoRA r {lora.get('r')}"
        if lora
        else (f"{training['method']}, all weights")
    )


def _metric_changes(details: dict[str, Any]) -> dict[str, str]:
    """'0.23 -> 0.98' per tuned metric (base -> tuned)."""
    base, tuned = details.get("base") or {}, details.get("tuned") or {}
    return {
        metric: f"{_short(base.get(metric))} -> {_short(value)}" for metric, value in tuned.items()
    }


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _fixes_message(state: RunState, diagnoses: list[dict[str, Any]]) -> str:
    """The fixes gate's question: the reviewer's comment, what the debugger found, and what
    approving (or editing) would start."""
    fixes, rejection = fixable(diagnoses), reviewer_rejection(state)
    iteration, debugger = state.get("iteration", 1), state["config"]["debugger"]
    parts = []
    if rejection:
        said = f': "{rejection["comment"]}"' if rejection["comment"] else ""
        parts.append(f"You rejected iteration {iteration}'s evaluation{said}.")
    if not debugger["enabled"]:
        parts.append("The debugger is disabled.")
    elif diagnoses:
        kinds = ", ".join(f"#{d['index']} {d['kind']} ({d['severity']})" for d in diagnoses)
        parts.append(f"The debugger found {len(diagnoses)} problem(s): {kinds}.")
    else:
        parts.append("The debugger found no problem.")
    if iteration > debugger["max_iterations"]:
        parts.append(
            f"debugger.max_iterations ({debugger['max_iterations']}) is used up; going on is "
            "your call."
        )
    if fixes:
        parts.append(
            f"Apply the {len(fixes)} proposed fix(es) and start iteration {iteration + 1}?"
        )
    else:
        parts.append(
            f"No fix is proposed: edit (your own config patch) starts iteration {iteration + 1}, "
            "reject ends the run."
        )
    return " ".join(parts)


def validate_gate_decision(value: Any, state: RunState, kind: str) -> dict[str, Any]:
    """`validate_decision`, plus what the pending gate itself needs: at approve_fixes an
    approve or edit must leave a valid patch to apply; at approve_release `select` must name
    candidates that passed their gates. Raise `DecisionError` (the run keeps waiting) or
    return the normalized decision."""
    normalized = validate_decision(value, state["config"])
    for option, gates in (("select", ("approve_fixes", "approve_release")), ("route", FIXES)):
        if option in normalized and kind not in gates:
            raise DecisionError(f"{option} goes with {' or '.join(gates)}, not with {kind}")
    if kind == "approve_release" and normalized["decision"] == "approve":
        release_selection(state.get("post_training") or {}, normalized.get("select"))
    before = RunConfig.model_validate(state["config"])
    if kind != "approve_fixes" or normalized["decision"] == "reject":
        if normalized["edits"]:
            check_edited_inputs(before, apply_patch(before, normalized["edits"]), state)
        return normalized
    try:
        patch = fixes_patch(state.get("diagnoses") or [], normalized)
        after = apply_patch(before, patch)
    except FixSelectionError as exc:
        raise DecisionError(str(exc)) from None
    except ConfigError as exc:
        issues = "; ".join(map(str, exc.issues))
        raise DecisionError(f"the combined patch is not a valid config: {issues}") from None
    check_edited_inputs(before, after, state)
    return normalized


def check_edited_inputs(before: RunConfig, after: RunConfig, state: RunState) -> None:
    """Raise `DecisionError` (the run keeps waiting) for an edit whose inputs cannot work: a
    local path it changes that does not exist, a local model whose config.json cannot be read,
    or a method that cannot learn from the run's prepared data. Cheap checks only (no data or
    weights are read); the phases still check everything else."""
    old = {where: value for where, value, _ in local_paths(before.model_dump(mode="json"))}
    for where, value, path_field in local_paths(after.model_dump(mode="json")):
        changed = old.get(where) != value and is_local_path(value, path_field)
        if changed and not Path(value).exists():
            raise DecisionError(f"the edit's {where}: {value}: no such file or directory")
    if after.model != before.model and looks_local(after.model.name_or_path):
        try:  # its config.json only, no weights
            load_model_config(after.model)
        except ModelLoadError as exc:
            raise DecisionError(f"the edit's model: {exc}") from None
    kind = (state.get("data") or {}).get("kind")
    method = after.training.method
    advice = kind_advice(kind, method) if kind else None
    if advice and before.data == after.data and method != before.training.method:
        raise DecisionError(
            f"the edit's training.method '{method}' cannot learn from this run's '{kind}' "
            f"data: {advice}"
        )


def _proposed_route(state: RunState, diagnoses: list[dict[str, Any]]) -> dict[str, Any]:
    """The route approving every fix would take, and why (empty when nothing applies)."""
    try:
        approve = {"decision": "approve"}
        patch = fixes_patch(diagnoses, approve)
        new = apply_patch(RunConfig.model_validate(state["config"]), patch)
    except (FixSelectionError, ConfigError):
        return {}
    route, reason, _ = choose_route(
        state, new.model_dump(mode="json"), requested_route(diagnoses, approve)
    )
    return {"proposed_route": route, "route_reason": reason}


def release_selection(table: dict[str, Any], select: list[int] | None) -> list[int]:
    """The candidates an approval registers: `select` (indexes of the table), else every one
    that passed its gate. A failed or unknown index is a `DecisionError` naming it."""
    rows = {row["index"]: row for row in table.get("candidates") or []}
    passing = [i for i, row in rows.items() if row["verdict"] == "pass"]
    if select is None:
        return passing
    unknown = [i for i in select if i not in rows]
    if unknown:
        raise DecisionError(f"no candidate with index {unknown}; indexes are {sorted(rows)}")
    failed = [i for i in select if i not in passing]
    if failed:
        why = "; ".join(f"#{i} {rows[i]['name']}: {rows[i]['reason']}" for i in failed)
        raise DecisionError(
            f"candidate(s) {failed} failed their gate and cannot be released ({why})"
        )
    if not select:
        raise DecisionError("select names no candidate; select at least one, or reject")
    return sorted(set(select))


def gate_release(state: RunState) -> dict[str, Any]:
    """Ask which post-training candidates to register: approve (every passing one, or
    `select` some by index), edit (a config patch: post-training runs again), or reject
    (nothing is released; the run ends)."""
    table = state.get("post_training") or {}
    rows = table.get("candidates") or []
    champion = next(
        (r for r in rows if r["index"] == table.get("champion")), rows[0] if rows else {}
    )
    passed = [r for r in rows if r["verdict"] == "pass"]
    failed = [r for r in rows if r["verdict"] != "pass"]
    details = {
        "candidates": rows,
        "champion": table.get("champion"),
        "gated_metrics": table.get("gated_metrics"),
        "gates": state["config"]["post_training"]["gates"],
        "table_path": table.get("table_path"),
        "how": (
            'approve registers every candidate that passed; add "select": [indexes] to register '
            "only those (their sources come along for the lineage); edit changes post_training "
            "and makes the candidates again; reject releases nothing and ends the run"
        ),
    }
    rolled = f", {len(failed)} rolled back" if failed else ""
    message = (
        f"Post-training made {len(rows) - 1} candidate(s): {len(passed) - 1} passed{rolled}; "
        f"champion: {champion.get('name', '?')}. Register the passing candidates?"
    )
    value = interrupt(_payload("approve_release", message, details))
    try:
        value = validate_gate_decision(value, state, "approve_release")
    except DecisionError as exc:
        return {"log": [{"next": "gate_release", "reason": f"invalid decision ignored: {exc}"}]}
    update = _record(state, "approve_release", "approve_release", value, reject_ends=True)
    if value["decision"] == "approve":
        select = release_selection(table, value.get("select"))
        update["release"] = {"select": select, "comment": value["comment"]}
        update["decisions"][0]["select"] = select
    return update
