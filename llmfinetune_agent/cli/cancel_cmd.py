"""`finetune-agent cancel RUN_ID`: cancel a run, or ask the process executing it to stop it."""

from __future__ import annotations

import typer

from llmfinetune_agent.cli.exit_codes import FAILED, OK


def register(app: typer.Typer) -> None:
    """Add the `cancel` command to the top-level app."""
    app.command("cancel")(cancel)


def cancel(run_id: str = typer.Argument(..., help="The run's id.")) -> None:
    """Cancel a queued or waiting run at once; ask a running one to stop at its next step."""
    from llmfinetune_agent.cli.run_cmd import exit_code_for
    from llmfinetune_agent.execution import RunError, cancel_run
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings

    settings = Settings.from_env()
    store = RunStore(settings.database_url, lease_seconds=settings.lease_seconds)
    try:
        outcome = cancel_run(store, run_id, by="cli")
    except RunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exit_code_for(exc)) from None
    if outcome.status == "cancelled":
        typer.echo(f"run {run_id} cancelled")
    elif outcome.stopping:
        typer.echo(
            f"run {run_id} is {outcome.status}: asked it to stop at its next training step or "
            f"node; follow it with: finetune-agent runs show {run_id}"
        )
    else:
        typer.echo(f"error: run {run_id}: {outcome.message}", err=True)
        raise typer.Exit(FAILED)
    raise typer.Exit(OK)
