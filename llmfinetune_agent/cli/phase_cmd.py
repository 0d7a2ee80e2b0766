"""`finetune-agent train` and `evaluate`: the phases called directly, without the graph.

For power users and as the baseline of the graph-overhead benchmark: no gates, no stores,
just data preparation, training and evaluation into an output directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT, FAILED


def register(app: typer.Typer) -> None:
    """Add `train` and `evaluate` to the top-level app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)


def train_command(
    config_file: Path = typer.Argument(..., help="Run config JSON file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output directory."),
) -> None:
    """Prepare the data and train, with no approval gates; prints the training result."""
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.pipeline import prepare_direct, train_direct
    from llmfinetune_agent.settings import Settings

    display = RunDisplay()
    with _user_errors(display):
        config, out = _load(config_file, output)
        settings = Settings.from_env()
        cache = settings.models_cache_dir
        data = prepare_direct(config, out, cache_dir=cache)
        display.say(f"data: {data['train_rows']} train / {data['eval_rows']} eval ({data['kind']})")
        result = train_direct(
            config,
            out / "training",
            data,
            progress=display.on_event,
            cache_dir=cache,
            backends_dir=settings.backends_dir,
        )
    display.say(json.dumps(result, indent=2, default=str))
    raise typer.Exit(0 if result["status"] == "completed" else FAILED)


def evaluate_command(
    config_file: Path = typer.Argument(..., help="Run config JSON file."),
    model: str = typer.Option(..., "--model", help="The tuned model (or LoRA adapter) directory."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output directory."),
) -> None:
    """Evaluate a model against the config's base model on its eval split; writes a report."""
    from llmfinetune_agent.cli.display import RunDisplay
    from llmfinetune_agent.pipeline import evaluate_direct, prepare_direct
    from llmfinetune_agent.settings import Settings
    from models import resolve_model_path

    display = RunDisplay()
    with _user_errors(display):
        config, out = _load(config_file, output)
        cache = Settings.from_env().models_cache_dir
        # A --model that is not there fails now, not after the base model's whole pass.
        resolve_model_path(model, cache_dir=cache)
        data = prepare_direct(config, out, cache_dir=cache)
        if not data["eval_rows"]:
            display.error(
                f"{config_file}: no eval rows to evaluate on: set data.eval (a file) or a "
                "data.eval_fraction above 0 that holds out at least one row."
            )
            raise typer.Exit(BAD_INPUT)
        report = evaluate_direct(
            config, out, data, tuned=model, progress=display.on_event, cache_dir=cache
        )
    for name, value in report["tuned"].items():
        base = report["base"].get(name)
        base_text = f"{base:.4f}" if base is not None else "—"
        display.say(f"{name:14} base {base_text:>8}  tuned {value:.4f}")
    display.say(f"thresholds passed: {report['passed']}; report in {out / 'evaluation'}")


class _user_errors:
    """Turn bad-input exceptions into a message and exit code 2 (no traceback)."""

    def __init__(self, display: Any):
        self.display = display

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        from llmfinetune_agent.config import ConfigError
        from llmfinetune_agent.execution import user_errors

        if exc is None or not isinstance(exc, user_errors()):
            return False
        if isinstance(exc, ConfigError):
            for issue in exc.issues:
                self.display.error(f"{exc.source}: {issue}")
        else:
            self.display.error(str(exc))
        raise typer.Exit(BAD_INPUT)


def _load(config_file: Path, output: Path | None) -> tuple[Any, Path]:
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.settings import Settings

    config = load_run_config(config_file)
    out = output or Settings.from_env().home / "direct" / config.name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only disk
        where = "--output" if output else "the output directory"
        typer.echo(
            f"error: {where} {out}: cannot create the directory ({exc.strerror or exc}).",
            err=True,
        )
        raise typer.Exit(BAD_INPUT) from None
    return config, out
