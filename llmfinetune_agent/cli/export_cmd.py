"""`finetune-agent export interactions OUT.jsonl [--model ID] [--since DATE]` and
`finetune-agent export runs OUT.json`: served answers as OpenAI-style `messages` rows (read back
by `data inspect` and any run as chat data), and every run with its config, decisions, metrics
and training statistics."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT

export_app = typer.Typer(help="Export interactions or runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `export` group to the top-level app."""
    app.add_typer(export_app, name="export")


@export_app.command("interactions")
def export_interactions(
    out: Path = typer.Argument(..., help="The JSONL file to write."),
    model: str | None = typer.Option(None, "--model", help="Only this model's (registry id)."),
    since: str | None = typer.Option(
        None, "--since", help="Only from this date on (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)."
    ),
) -> None:
    """Write served answers (generate and chat) as `{"messages": [...]}` rows."""
    from llmfinetune_agent.export import ExportError, interaction_rows, parse_since
    from llmfinetune_agent.feedback_store import FeedbackStore
    from llmfinetune_agent.settings import Settings

    try:
        when = parse_since(since) if since else None
    except ExportError as exc:
        _refuse(str(exc))
    rows = interaction_rows(
        FeedbackStore(Settings.from_env().database_url), model_id=model, since=when
    )
    if not rows:
        scope = (f" of model {model!r}" if model else "") + (f" since {since}" if since else "")
        _refuse(f"No interactions{scope} to export: serve answers first (generate or chat).")
    write_export(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    typer.echo(f"Wrote {len(rows)} interactions as messages rows to {out}.")


@export_app.command("runs")
def export_runs(out: Path = typer.Argument(..., help="The JSON file to write.")) -> None:
    """Write every run with its config, decisions, metrics and training statistics."""
    from llmfinetune_agent.execution import open_service
    from llmfinetune_agent.export import run_records

    with open_service() as service:
        records = run_records(service)
    write_export(out, json.dumps(records, indent=2, default=str) + "\n")
    typer.echo(f"Wrote {len(records)} runs to {out}.")


def write_export(out: Path, text: str) -> None:
    """Write `text` to `out` (its folder made); exit 2 naming `out` when that cannot be done."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        _refuse(f"cannot write {out}: {exc.strerror or exc}")


def _refuse(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(BAD_INPUT)
