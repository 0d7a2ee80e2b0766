"""`finetune-agent export interactions OUT.jsonl [--model ID] [--since DATE]` and
`finetune-agent export runs OUT.json`: served answers as OpenAI-style `messages` rows (read back
by `data inspect` and any run as chat data), and every run with its config, decisions, metrics
and training statistics."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT
from models.paths import not_a_folder

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

    if model is not None and not model.strip():
        _refuse("--model '': give a model's registry id (or leave --model out for every model).")
    try:  # an empty --since is no date either, not "from the beginning"
        when = parse_since(since) if since is not None else None
    except ExportError as exc:
        _refuse(str(exc))
    store = FeedbackStore(Settings.from_env().database_url)
    rows = interaction_rows(store, model_id=model, since=when)
    if not rows:
        scope = (f" of model {model!r}" if model else "") + (f" since {since}" if since else "")
        served = len(store.list_interactions(model_id=model, since=when))
        if served:  # each answer was empty: there is nothing to learn from
            _refuse(f"No interactions{scope} to export: the {served} served had empty answers.")
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
    """Write `text` to `out` (its folder made); exit 2 naming `out` when that cannot be done,
    or when `out` is the run database (writing would destroy every run, chat and model)."""
    from llmfinetune_agent.settings import Settings, database_backend, sqlite_path

    url = Settings.from_env().database_url
    if database_backend(url) == "sqlite" and sqlite_path(url) != ":memory:":
        database = Path(sqlite_path(url)).resolve()
        kept = [database.with_name(database.name + end) for end in ("", "-wal", "-shm")]
        if out.resolve() in kept:
            _refuse(f"cannot write {out}: it is the run database ({database}); name another file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except (FileExistsError, NotADirectoryError):  # a file where a folder on the way goes
        _refuse(f"cannot write {out}: {not_a_folder(out.parent)} is not a folder")
    except OSError as exc:
        _refuse(f"cannot write {out}: {exc.strerror or exc}")


def _refuse(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(BAD_INPUT)
