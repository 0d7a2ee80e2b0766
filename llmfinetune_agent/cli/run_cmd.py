"""`finetune-agent run`, `resume` and `runs list|show`: drive runs through the graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from llmfinetune_agent.cli.exit_codes import AWAITING_APPROVAL, BAD_INPUT, CANCELLED, FAILED, OK

runs_app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)

STATUS_EXIT = {"completed": OK, "awaiting_approval": AWAITING_APPROVAL, "cancelled": CANCELLED}
ENDED_EXIT = {"completed": OK, "cancelled": CANCELLED, "failed": FAILED}  # resume on an ended run


def register(app: typer.Typer) -> None:
    """Add `run`, `resume` and the `runs` group to the top-level app."""
    app.command("run")(run)
    app.command("resume")(resume)
    app.add_typer(runs_app, name="runs")


def run(
    config_file: Path = typer.Argument(..., help="Run config JSON file."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Approve every gate."),
    as_json: bool = typer.Option(
        False, "--json", help="Show each gate's full payload as JSON instead of its summary."
    ),
) -> None:
    """Start a run: data, plan gate, training, evaluation, finalize — asking at each gate."""
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.config import ConfigError, load_run_config
    from llmfinetune_agent.execution import open_service

    try:
        config = load_run_config(config_file)
    except ConfigError as exc:
        _fail_input(exc)
    display = RunDisplay(gate_json=as_json)
    with open_service() as service:
        service = executor_of(service)
        record = service.create_run(config)
        display.say(f"run {record.id} created ({record.run_dir})")
        record = service.start(record.id, on_event=display.on_event)
        record = _drive(service, record, display, auto_approve=auto_approve)
    raise typer.Exit(_finish(record, display))


def resume(
    run_id: str = typer.Argument(..., help="The run's id (see `finetune-agent runs list`)."),
    approve: bool = typer.Option(False, "--approve", help="Approve the pending gate."),
    reject: bool = typer.Option(False, "--reject", help="Reject the pending gate."),
    edit: str | None = typer.Option(None, "--edit", help="Approve with a config patch (JSON)."),
    comment: str = typer.Option("", "--comment", help="A comment recorded with the decision."),
    select: str | None = typer.Option(
        None,
        "--select",
        help="approve_fixes: apply only these diagnoses, e.g. 0,2; approve_release: register "
        "only these candidates.",
    ),
    route: str | None = typer.Option(
        None,
        "--route",
        help="approve_fixes: 'retrain' from the base model or 'continue' from the checkpoint.",
    ),
    gate: str | None = typer.Option(
        None,
        "--gate",
        help="Answer only if the run waits at this gate (e.g. approve_plan): a repeated or late "
        "command then cannot answer the gate after it.",
    ),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Approve every later gate."),
    as_json: bool = typer.Option(
        False, "--json", help="Show each gate's full payload as JSON instead of its summary."
    ),
) -> None:
    """Continue a run: answer its pending gate, or pick it up after a crash."""
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.execution import RunError, open_service
    from llmfinetune_agent.execution.decisions import reopen_gate

    decision = _decision_from_flags(approve, reject, edit, comment)
    if select is not None or route is not None:
        if decision is None or decision["decision"] == "reject":
            _fail_input("--select and --route go with --approve or --edit")
        decision.update(_fix_options(select, route))
    display = RunDisplay(gate_json=as_json)
    with open_service() as stores:
        service = executor_of(stores)
        try:
            record = service.require(run_id)
            if record.status in ENDED_EXIT:
                raise typer.Exit(_print_ended(display, record))
            record, accepted = reopen_gate(stores, record)
            if accepted is not None:  # a decision no process lived to carry out
                if decision is not None or gate is not None:
                    _fail_input(
                        f"run {run_id} has a decision accepted for its gate "
                        f"({accepted.get('decision')}) that was not carried out yet: run "
                        f"finetune-agent resume {run_id} without a decision to carry it out"
                    )
                decision = accepted
            else:
                _check_waiting(record, decision, gate)
            pending = record.pending_interrupt or {}
            asked = decision is None and record.status == "awaiting_approval" and not auto_approve
            if decision is None and record.status == "awaiting_approval":
                if auto_approve:
                    decision = {"decision": "approve", "comment": "auto-approved"}
                else:
                    config = _run_config(service, record)
                    display.gate(pending, config=config)
                    if not _interactive():
                        _print_waiting(display, record)
                        raise typer.Exit(AWAITING_APPROVAL)
                    decision = _ask(display, pending, check=_edit_check(config))
            record = _answer(service, record, display, decision, ask_again=asked)
        except RunError as exc:
            display.error(str(exc))
            raise typer.Exit(exit_code_for(exc)) from None
        record = _drive(service, record, display, auto_approve=auto_approve)
    raise typer.Exit(_finish(record, display))


@runs_app.command("list")
def runs_list(
    status: str | None = typer.Option(
        None, help="Only runs with this status (or 'interrupted': running, its process gone)."
    ),
    limit: int = typer.Option(50, min=1, max=500, help="At most this many runs."),
) -> None:
    """List runs, newest first."""
    from llmfinetune_agent.run_store import RUN_STATUSES, RunStore
    from llmfinetune_agent.settings import Settings

    if status is not None and status not in (*RUN_STATUSES, "interrupted"):
        _fail_input(
            f"--status must be one of {', '.join(RUN_STATUSES)}, interrupted; got {status!r}"
        )
    store = RunStore(Settings.from_env().database_url)
    stored = "running" if status == "interrupted" else status
    runs, total = store.list_runs(status=stored, limit=limit)
    interrupted = [r.id for r in runs if store.is_interrupted(r)]
    if status == "interrupted":  # derived, not stored: the running runs whose claim is dead
        runs = [r for r in runs if r.id in interrupted]
        total = len(runs)
    typer.echo(f"{'id':14}{'status':20}{'node':22}{'created':22}name")
    for r in runs:
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        shown = "interrupted" if r.id in interrupted else r.status
        typer.echo(f"{r.id:14}{shown:20}{(r.current_node or '-'):22}{created:22}{r.name}")
    typer.echo(f"{len(runs)} of {total} run(s)")
    for run_id in interrupted:
        typer.echo(_interrupted_line(run_id))


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="The run's id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
) -> None:
    """Show a run: status, pending gate, decisions, metrics, model."""
    from llmfinetune_agent.execution import describe_run

    info = read_run(describe_run, run_id)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    from llmfinetune_agent.cli.display import print_run

    print_run(info)
    if info.get("interrupted"):
        typer.echo(_interrupted_line(run_id))


# --- helpers ------------------------------------------------------------------------------


def executor_of(service: Any) -> Any:
    """What executes the runs this command drives: the service itself, in this process, or
    with the Ray backend the cluster, which this process submits runs to and follows."""
    if service.settings.backend != "ray":
        return service
    from llmfinetune_agent.execution import FollowedRuns, RayBackend

    return FollowedRuns(RayBackend(service))


def exit_code_for(exc: Any) -> int:
    """A `RunError`'s exit code: the user's mistake (unknown run, invalid decision, a
    request that cannot be served as asked, e.g. a fork at a checkpoint holding no run) is 2."""
    return BAD_INPUT if exc.code in ("invalid", "not_found", "bad_request") else FAILED


def read_run(read: Any, run_id: str) -> Any:
    """`read(service, run_id)` with an open service; a `RunError` is printed, exit 2."""
    from llmfinetune_agent.execution import RunError, open_service

    with open_service() as service:
        try:
            return read(service, run_id)
        except RunError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(BAD_INPUT) from None


def _drive(service: Any, record: Any, display: Any, *, auto_approve: bool) -> Any:
    """Answer gates until the run ends: automatically, at a prompt, or not at all (exit 3)."""
    from llmfinetune_agent.execution import InvalidDecision

    while record.status == "awaiting_approval":
        pending, config = record.pending_interrupt or {}, _run_config(service, record)
        display.gate(pending, config=config)
        asking = _interactive() and not auto_approve
        if auto_approve:
            decision = {"decision": "approve", "comment": "auto-approved"}
        elif asking:
            decision = _ask(display, pending, check=_edit_check(config))
        else:
            return record
        try:
            record = _answer(service, record, display, decision, ask_again=asking)
        except InvalidDecision as exc:
            display.error(f"{exc} — the run is still waiting")
            return record
    return record


def _answer(
    service: Any, record: Any, display: Any, decision: dict[str, Any] | None, *, ask_again: bool
) -> Any:
    """Resume with `decision`. An invalid one raises `InvalidDecision`, or (at a prompt) is
    explained right above a new prompt, without reprinting the gate's screen."""
    from llmfinetune_agent.execution import InvalidDecision

    pending = record.pending_interrupt or {}
    while True:
        decision = _paths_from_here(decision)
        _show_revised_plan(service, record, display, decision)
        try:
            return service.resume(
                record.id,
                decision=decision,
                interrupt_id=pending.get("id"),
                on_event=display.on_event,
            )
        except InvalidDecision as exc:
            if not ask_again:
                raise
            display.error(f"{exc} — the run is still waiting; answer again")
            decision = _ask(display, pending, check=_edit_check(_run_config(service, record)))


def _check_waiting(record: Any, decision: dict[str, Any] | None, gate: str | None) -> None:
    """Exit 2 when a decision (or `--gate`) meets a run that is not waiting at that gate."""
    waiting = record.status == "awaiting_approval"
    kind = (record.pending_interrupt or {}).get("kind") if waiting else None
    if (decision is not None or gate is not None) and not waiting:
        _fail_input(
            f"run {record.id} is not waiting at a gate (status {record.status}); to go on with "
            f"it, run finetune-agent resume {record.id} without a decision"
        )
    if gate is not None and gate != kind:
        _fail_input(
            f"run {record.id} waits at {kind}, not at {gate}: nothing was answered. See it with "
            f"finetune-agent runs show {record.id}"
        )


def _paths_from_here(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    """An edit's relative paths, as typed in this shell, anchored at its working folder (the
    process that later reads them may run elsewhere)."""
    if not decision or not isinstance(decision.get("edits"), dict):
        return decision
    from llmfinetune_agent.config import resolve_patch_paths

    return {**decision, "edits": resolve_patch_paths(decision["edits"], Path.cwd())}


def _run_config(service: Any, record: Any) -> dict[str, Any] | None:
    return (service.state_values(record.id) or {}).get("config")


def _edit_check(config: dict[str, Any] | None) -> Any:
    """A check of a typed config patch against the run's config: the problem, or None."""
    from llmfinetune_agent.agents.gates import DecisionError, validate_decision

    def check(edits: Any) -> str | None:
        if config is None:
            return None  # nothing to check against here; the runner still validates
        try:
            validate_decision({"decision": "edit", "edits": edits}, config)
        except DecisionError as exc:
            return str(exc)
        return None

    return check


def _show_revised_plan(
    service: Any, record: Any, display: Any, decision: dict[str, Any] | None
) -> None:
    """An edit at the plan gate: show the plan it leads to before the run goes on."""
    pending = record.pending_interrupt or {}
    if pending.get("kind") != "approve_plan" or not decision:
        return
    if not isinstance(decision.get("edits"), dict) or not decision["edits"]:
        return  # not a patch: the runner refuses it
    from llmfinetune_agent.cli.plan_preview import revised_estimate

    config = _run_config(service, record)
    details = pending.get("details") or {}
    revised = revised_estimate(config, decision["edits"], details) if config else None
    if revised:
        display.revised_plan(*revised, before=details.get("estimate") or {})


def _finish(record: Any, display: Any) -> int:
    from llmfinetune_agent.execution import BAD_INPUT_PREFIX

    if record.status == "awaiting_approval":
        _print_waiting(display, record)
        return AWAITING_APPROVAL
    display.finished(record)
    if record.status == "failed":
        return BAD_INPUT if (record.error or "").startswith(BAD_INPUT_PREFIX) else FAILED
    return STATUS_EXIT.get(record.status, FAILED)


def _interrupted_line(run_id: str) -> str:
    return (
        f"run {run_id} was interrupted (its process is gone): "
        f"resume it with finetune-agent resume {run_id}"
    )


def _print_ended(display: Any, record: Any) -> int:
    """`resume` on a run that has ended: say how it ended; the exit code says it too."""
    from llmfinetune_agent.execution import BAD_INPUT_PREFIX

    how = {"completed": "completed", "cancelled": "was cancelled", "failed": "failed"}
    text = f"run {record.id} has already ended: it {how[record.status]}"
    if record.error and record.status != "completed":
        text += f" ({record.error})"
    display.say(f"{text}; there is nothing to resume.")
    if record.model_path:
        display.say(f"model: {record.model_path}")
    display.say(
        f"details: finetune-agent runs show {record.id}; to go on from a checkpoint: "
        f"finetune-agent runs history {record.id}, then finetune-agent fork {record.id} --at <id>"
    )
    if record.status == "failed" and (record.error or "").startswith(BAD_INPUT_PREFIX):
        return BAD_INPUT  # the code `run` exited with for this run
    return ENDED_EXIT[record.status]


def _print_waiting(display: Any, record: Any) -> None:
    from llmfinetune_agent.cli.gate_screens import question

    pending = record.pending_interrupt or {}
    asks = question(pending, fallback="")
    waiting = f"run {record.id} is waiting at {pending.get('kind')}"
    display.say(f"{waiting}: {asks}" if asks else waiting)
    gate = f" --gate {pending['kind']}" if pending.get("kind") else ""
    display.say(f"approve with:  finetune-agent resume {record.id} --approve{gate}")
    display.say(
        f"(or --reject, or --edit '<json patch>'; details: finetune-agent runs show {record.id})"
    )


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _decision_from_flags(
    approve: bool, reject: bool, edit: str | None, comment: str
) -> dict[str, Any] | None:
    chosen = [name for name, on in (("approve", approve), ("reject", reject), ("edit", edit)) if on]
    if len(chosen) > 1:
        _fail_input(f"choose one of --approve, --reject, --edit (got {', '.join(chosen)})")
    if not chosen:
        return None
    decision: dict[str, Any] = {"decision": chosen[0], "comment": comment}
    if edit is not None:
        try:
            decision["edits"] = json.loads(edit)
        except json.JSONDecodeError as exc:
            _fail_input(f"--edit is not valid JSON ({exc.msg} at column {exc.colno})")
        if not isinstance(decision["edits"], dict):
            _fail_input(
                "--edit must be a JSON object, a config patch such as "
                f'\'{{"training": {{"learning_rate": 0.001}}}}\'; got {edit}'
            )
    return decision


def _fix_options(
    select: str | None, route: str | None, *, exit_on_error: bool = True
) -> dict[str, Any]:
    """`--select 0,2` and `--route continue` as decision fields (validated again by the gate).
    A bad value exits with code 2, or raises ValueError for the interactive prompt."""
    options: dict[str, Any] = {}
    problem = None
    if select is not None:
        try:
            options["select"] = [int(part) for part in select.split(",") if part.strip()]
        except ValueError:
            problem = f"select: indexes like 0,2 (got {select!r})"
    if route is not None:
        if route in ("retrain", "continue"):
            options["route"] = route
        else:
            problem = f"route: 'retrain' or 'continue' (got {route!r})"
    if problem and exit_on_error:
        _fail_input(problem)
    if problem:
        raise ValueError(problem)
    return options


def _ask(display: Any, pending: dict[str, Any], check: Any = None) -> dict[str, Any]:
    """The interactive prompt under a gate's screen: the question once, one key per option
    (Enter takes the default), then a config patch for edit (`check` names what is wrong with
    one, and the patch is asked again) and a comment."""
    from llmfinetune_agent.cli.gate_screens import (
        default_answer,
        option_keys,
        parse_choice,
        question,
    )

    options = pending.get("options") or ["approve", "reject", "edit"]
    default, keys = default_answer(pending), option_keys(options)
    while True:
        choice = parse_choice(typer.prompt(f"{question(pending)} {keys}", default=default), options)
        if choice:
            break
        display.error(f"answer {keys} (one letter is enough; Enter answers {default})")
    decision: dict[str, Any] = {"decision": choice}
    if choice == "edit":
        decision["edits"] = _ask_patch(display, check)
    if pending.get("kind") == "approve_fixes" and decision["decision"] != "reject":
        decision.update(_ask_fix_options(display, decision["decision"]))
    if pending.get("kind") == "approve_release" and decision["decision"] == "approve":
        decision.update(_ask_release_selection(display))
    decision["comment"] = typer.prompt("comment", default="", show_default=False)
    return decision


def _ask_patch(display: Any, check: Any) -> dict[str, Any]:
    """A config patch typed as JSON, asked again (under the error) until it is valid."""
    while True:
        text = typer.prompt('config patch as JSON, e.g. {"training": {"learning_rate": 0.001}}')
        try:
            edits = json.loads(text)
        except json.JSONDecodeError as exc:
            display.error(f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        problem = check(edits) if check else None
        if problem is None:
            return edits
        display.error(problem)


def _ask_fix_options(display: Any, choice: str) -> dict[str, Any]:
    """approve_fixes: which diagnoses to apply (by index) and the route, Enter for defaults."""
    default = "all with a patch" if choice == "approve" else "none"
    while True:
        text = typer.prompt(
            f"diagnoses to apply, e.g. 0,2 [{default}]", default="", show_default=False
        )
        route = typer.prompt(
            "route: retrain / continue [as proposed]", default="", show_default=False
        )
        try:
            return _fix_options(
                text.strip() or None, route.strip().lower() or None, exit_on_error=False
            )
        except ValueError as exc:
            display.error(str(exc))


def _ask_release_selection(display: Any) -> dict[str, Any]:
    """approve_release: which candidates to register (by index), Enter for every passing one."""
    while True:
        text = typer.prompt(
            "candidates to register, e.g. 0,1 [every passing one]", default="", show_default=False
        )
        if not text.strip():
            return {}
        try:
            return {"select": [int(part) for part in text.split(",") if part.strip()]}
        except ValueError:
            display.error(f"select: candidate indexes like 0,2 (got {text!r})")


def _fail_input(problem: Any) -> None:
    from llmfinetune_agent.config import ConfigError

    if isinstance(problem, ConfigError):
        typer.echo(f"{problem.source}: INVALID", err=True)
        for issue in problem.issues:
            typer.echo(f"  - {issue}", err=True)
    else:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(BAD_INPUT)
