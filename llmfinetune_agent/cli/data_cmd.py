"""`finetune-agent data inspect`: the data report before any compute is spent."""

import json

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
    file: str = typer.Argument(  # text, not Path: an empty FILE would become "." (this folder)
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

    if not file.strip():
        typer.echo(f"error: FILE {file!r}: give a data file or a folder of them", err=True)
        raise typer.Exit(BAD_INPUT)
    try:
        config = DataConfig(
            train=file, format=format, max_length=max_length, eval_fraction=eval_fraction
        )
    except ValidationError as exc:
        for issue in issues_from_validation(exc, DataConfig):
            typer.echo(f"error: {issue}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    if tokenizer is not None and not tokenizer.strip():
        typer.echo(
            f"error: --tokenizer {tokenizer!r}: give a model reference, or leave it out", err=True
        )
        raise typer.Exit(BAD_INPUT)
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
    """The `count_tokens` a run uses with this tokenizer (chat rows through its chat
    template), so the rows reported kept are the rows a run keeps (imports transformers)."""
    from models import load_tokenizer
    from phases.data import tokenizer_token_counter

    return tokenizer_token_counter(load_tokenizer(model_ref))
