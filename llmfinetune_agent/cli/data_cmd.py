"""`finetune-agent data inspect`: the data report before any compute is spent."""

import json
from pathlib import Path

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT

app = typer.Typer(
    help="Inspect training data: detected format, report, samples.", no_args_is_help=True
)

FORMATS = (
    "auto, alpaca, dolly, prompt_completion, messages, sharegpt, ultrachat, oasst, oasst_trees, "
    "tool_calling, xlam, preference, kto, prompt, text"
)


@app.command("inspect")
def inspect(
    file: Path = typer.Argument(
        ...,
        help="A CSV, TSV, JSON, JSONL or Parquet file, a directory of them, or a save_to_disk folder.",
    ),
    format: str = typer.Option("auto", "--format", "-f", help=f"Force a format: {FORMATS}."),
    max_length: int = typer.Option(512, help="Longest example in tokens; longer rows are dropped."),
    eval_fraction: float = typer.Option(0.1, help="Fraction held out for evaluation."),
    tokenizer: str | None = typer.Option(
        None,
        "--tokenizer",
        help="Count tokens with this model's tokenizer (e.g. builtin:tiny-llama); default: an approximation.",
    ),
) -> None:
    """Print the detected format, the validation report and three normalized samples."""
    from pydantic import ValidationError

    from llmfinetune_agent.config import issues_from_validation
    from phases.data import DataError, prepare_data
    from phases.data.config import DataConfig

    try:
        config = DataConfig(
            train=str(file), format=format, max_length=max_length, eval_fraction=eval_fraction
        )
    except ValidationError as exc:
        for issue in issues_from_validation(exc, DataConfig):
            typer.echo(f"error: {issue}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    try:
        count_tokens = _token_counter(tokenizer) if tokenizer else None
        prepared = prepare_data(config, count_tokens=count_tokens)
    except (DataError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    typer.echo(f"format: {prepared.format} (normalized as {prepared.kind})")
    for line in prepared.report.summary_lines():
        typer.echo(line)
    typer.echo("samples:")
    for record in prepared.train[:3]:
        typer.echo("  " + json.dumps(record, ensure_ascii=False))


def _token_counter(model_ref: str):
    """A `count_tokens` function backed by a real tokenizer (imports transformers)."""
    from models import load_tokenizer

    tok = load_tokenizer(model_ref)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
