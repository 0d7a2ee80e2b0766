"""`finetune-agent runs history RUN_ID` and `finetune-agent fork RUN_ID --at CHECKPOINT`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, OK


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    """Add `fork` to the top-level app and `history` to the `runs` group."""
    app.command("fork")(fork)
    runs_app.command("history")(runs_history)


def runs_history(
    run_id: str = typer.Argument(..., help="The run's id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON."),
) -> None:
    """List a run's checkpoints, newest first: id, the node that wrote it, time, next node."""
    from llmfinetune_agent.cli.run_cmd import read_run
    from llmfinetune_agent.fork import run_history

    history = read_run(run_history, run_id)
    if as_json:
        typer.echo(json.dumps(history, indent=2, default=str))
        return
    typer.echo(f"{'checkpoint':38}{'step':>5}  {'node':22}{'next':22}time")
    for c in history:
        node, after = ",".join(c.get("node") or []) or "-", ",".join(c["next"]) or "-"
        typer.echo(f"{c['checkpoint_id']:38}{c['step'] or 0:>5}  {node:22}{after:22}{c['time']}")
    typer.echo(f"{len(history)} checkpoint(s); fork with: finetune-agent fork {run_id} --at <id>")


def fork(
    run_id: str = typer.Argument(..., help="The run to fork."),
    at: str = typer.Option(..., "--at", help="Checkpoint id (or a unique prefix) to fork from."),
    sets: list[str] = typer.Option(
        [], "--set", help="A config change, e.g. training.learning_rate=1e-4 (repeatable)."
    ),
    run: bool = typer.Option(True, "--run/--no-run", help="Execute the new run right away."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Approve every gate."),
) -> None:
    """Create a new run continuing from a checkpoint of RUN_ID with a config patch."""
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.cli.run_cmd import _drive, _finish, exit_code_for
    from llmfinetune_agent.config import resolve_patch_paths
    from llmfinetune_agent.execution import RunError, open_service
    from llmfinetune_agent.fork import fork_run

    # Relative paths are read from the folder the command runs in, as in a gate edit here.
    patch = resolve_patch_paths(patch_from_sets(sets), Path.cwd())
    display = RunDisplay()
    with open_service() as service:
        try:
            child = fork_run(service, run_id, checkpoint_id=at, patch=patch or None)
        except RunError as exc:
            display.error(str(exc))
            raise typer.Exit(exit_code_for(exc)) from None
        display.say(f"run {child.id} forked from {run_id} at {at} ({child.run_dir})")
        if not run:
            display.say(f"start it with:  finetune-agent resume {child.id}")
            raise typer.Exit(OK)
        record = service.resume(child.id, on_event=display.on_event)
        record = _drive(service, record, display, auto_approve=auto_approve)
    raise typer.Exit(_finish(record, display))


def patch_from_sets(sets: list[str]) -> dict[str, Any]:
    """`a.b=value` items as a nested patch; values are JSON when they parse, else strings."""
    patch: dict[str, Any] = {}
    keys: dict[tuple[str, ...], str] = {}  # each key path set so far, with its --set item
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            typer.echo(f"error: --set needs key.path=value, got {item!r}", err=True)
            raise typer.Exit(BAD_INPUT)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        path = tuple(key.strip().split("."))
        *parents, leaf = path
        # `a.b=1` twice, or `training=...` beside `training.epochs=...`, contradict: one
        # would silently replace (or crash on) the other, whichever came first.
        clash = next((o for k, o in keys.items() if k[: len(path)] == path[: len(k)]), None)
        if clash is not None:
            typer.echo(
                f"error: --set {clash!r} and --set {item!r} set the same field (or one "
                "inside the other): give it once",
                err=True,
            )
            raise typer.Exit(BAD_INPUT)
        keys[path] = item
        node = patch
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return patch
