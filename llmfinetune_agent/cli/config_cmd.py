"""`finetune-agent config validate|schema`."""

import json
from pathlib import Path

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT

app = typer.Typer(help="Validate run configs and print their JSON Schema.", no_args_is_help=True)


@app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="Run config JSON files.")) -> None:
    """Print OK per valid file, or every error with its JSON path and a hint (exit 2)."""
    from llmfinetune_agent.config import ConfigError, parse_run_config, read_config_json

    any_bad = False
    for path in files:
        try:
            parse_run_config(read_config_json(path), source=str(path))
        except ConfigError as exc:
            any_bad = True
            typer.echo(f"{path}: INVALID ({len(exc.issues)} error{'s' * (len(exc.issues) != 1)})")
            for issue in exc.issues:
                typer.echo(f"  - {issue}")
            continue
        typer.echo(f"{path}: OK")
    if any_bad:
        raise typer.Exit(BAD_INPUT)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a run config (point your editor's JSON schema setting at it)."""
    from llmfinetune_agent.config import config_json_schema

    typer.echo(json.dumps(config_json_schema(), indent=2))
