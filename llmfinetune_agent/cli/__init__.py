"""The `finetune-agent` command line.

Start-up stays fast (`--help` in well under half a second): only typer is imported here;
each command imports the config, torch or transformers inside its own body.
"""

import os

import typer

# Our own progress display replaces the libraries' tqdm bars (e.g. "Writing model shards").
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# tqdm reads TQDM_DISABLE when first imported: this also hides bars no library switch reaches
# (transformers' "Converting and de-quantizing GGUF tensors" when a .gguf model is imported).
os.environ.setdefault("TQDM_DISABLE", "1")

from llmfinetune_agent.cli import (  # noqa: E402
    backends_cmd,
    cancel_cmd,
    chat_cmd,
    compare_cmd,
    config_cmd,
    data_cmd,
    export_cmd,
    feedback_cmd,
    fork_cmd,
    models_cmd,
    phase_cmd,
    run_cmd,
    serve_cmd,
    stats_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="finetune-agent",
    help="Fine-tune language models with a LangGraph multi-agent pipeline and human approvals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich formatting costs ~250 ms at start-up
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(backends_cmd.app, name="backends")
run_cmd.register(app)
cancel_cmd.register(app)
fork_cmd.register(app, run_cmd.runs_app)
phase_cmd.register(app)
models_cmd.register(app)
serve_cmd.register(app)
worker_cmd.register(app)
chat_cmd.register(app)
feedback_cmd.register(app)
compare_cmd.register(app)
stats_cmd.register(app)
export_cmd.register(app)

__all__ = ["app", "database_problem", "main"]


def _print_version(value: bool) -> None:
    """`--version`: the installed package's version, from its metadata (nothing heavy imported)."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        typer.echo(f"finetune-agent {version('finetune-agent')}")
    except PackageNotFoundError:
        typer.echo(
            "finetune-agent (version unknown: the package is not installed; pip install -e .)"
        )
    raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Options of the command itself (the commands are listed below)."""


def main() -> None:
    """The console script: `app`, with an unreachable database reported in one line (exit 1),
    and a setting it cannot use (a database URL of no supported kind, say) too (exit 2),
    instead of a traceback, whichever command met it."""
    from llmfinetune_agent.cli.exit_codes import BAD_INPUT
    from llmfinetune_agent.settings import SettingsError

    try:
        app()
    except SettingsError as exc:  # a setting (FINETUNE_AGENT_*) the service cannot use
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(BAD_INPUT) from None
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        typer.echo(f"error: {problem}", err=True)
        raise SystemExit(1) from None


def database_problem(exc: BaseException) -> str | None:
    """A one-line description if `exc` means the run database cannot be used, else None."""
    from llmfinetune_agent.checkpointing import CheckpointStoreError

    if isinstance(exc, CheckpointStoreError):
        return str(exc)
    damaged = _damaged_sqlite(getattr(exc, "orig", None) or exc)
    if damaged:
        return damaged
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    from llmfinetune_agent.settings import Settings, redacted_url

    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    url = redacted_url(Settings.from_env().database_url)
    return (
        f"cannot use the run database {url}: {reason}. "
        "Check FINETUNE_AGENT_DATABASE_URL and that the server is running."
    )


def _damaged_sqlite(exc: BaseException) -> str | None:
    """A SQLite file that is not a database, or a damaged one ("file is not a database",
    "database disk image is malformed"): the file named, and what can be done."""
    import sqlite3

    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(
        exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.OperationalError
    ):
        return None  # a constraint or a query is a bug; a lock or a missing folder says itself
    from llmfinetune_agent.settings import Settings, redacted_url

    url = redacted_url(Settings.from_env().database_url)
    return (
        f"cannot use the run database {url}: {str(exc).strip()}. The file is damaged or is not "
        "a SQLite database: restore it from a backup, or move it aside to start an empty one "
        "(its runs and chats are then not listed)."
    )
