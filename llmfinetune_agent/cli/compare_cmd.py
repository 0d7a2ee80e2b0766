"""`finetune-agent compare MODEL_A MODEL_B --data FILE`: two models, or two versions of a model
or prompt, scored on the same rows with the same metrics, side by side (A/B).

Each side is a registry id (a model, or a prompt a prompt run registered), a prompt artifact
file, or any model reference a run config accepts; FILE is any data file `data inspect` reads
(normalized first, every usable row scored).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import typer

from llmfinetune_agent.cli.exit_codes import BAD_INPUT


def register(app: typer.Typer) -> None:
    """Add `compare` to the top-level app."""
    app.command("compare")(compare_command)


def compare_command(
    model_a: str = typer.Argument(..., help="Registry id, prompt artifact file or model."),
    model_b: str = typer.Argument(..., help="Registry id, prompt artifact file or model."),
    data: Path = typer.Option(..., "--data", help="The rows both are scored on (any format)."),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        help="Comma-separated metrics (default: rougeL, and the JSON ones "
        "when the references are JSON).",
    ),
    max_examples: int | None = typer.Option(
        None, "--max-examples", min=1, help="Score at most N rows."
    ),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, max=4096),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Score MODEL_A and MODEL_B on the same rows and print their metrics side by side."""
    from pydantic import ValidationError

    from phases.evaluation.config import EvaluationConfig

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else []
    if metrics and not names:  # `--metrics ,` would silently score neither rougeL nor another
        _refuse(f"--metrics {metrics!r} names no metric; give e.g. --metrics rougeL,exact_match")
    try:
        config = EvaluationConfig(
            metrics=names or ["rougeL"], max_examples=max_examples, max_new_tokens=max_new_tokens
        )
    except ValidationError as exc:  # pydantic's dump is many lines; its messages are enough
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        _refuse(f"--metrics: {reasons}")
    sides = {"A": _resolve(model_a), "B": _resolve(model_b)}  # both checked before any loads
    with tempfile.TemporaryDirectory() as folder:
        rows = _normalized(data, Path(folder))
        results = {
            side: _score(ref, resolved, config, rows, data)
            for (side, resolved), ref in zip(sides.items(), (model_a, model_b), strict=True)
        }
    if as_json:
        typer.echo(
            json.dumps(
                {side: r.model_dump(exclude={"predictions"}) for side, r in results.items()},
                indent=2,
            )
        )
        return
    typer.echo(side_by_side(results["A"], results["B"], model_a, model_b))


def side_by_side(a: Any, b: Any, name_a: str, name_b: str) -> str:
    """A table: one row per metric, A's value, B's value and B minus A."""
    names = [m for m in a.metrics if m in b.metrics]
    width = max([len(n) for n in names] + [6])
    lines = [
        f"A: {name_a}",
        f"B: {name_b}",
        f"rows: {a.n_examples}",
        "",
        f"{'metric':<{width}}  {'A':>8}  {'B':>8}  {'B - A':>8}",
    ]
    for name in names:
        va, vb = a.metrics[name], b.metrics[name]
        lines.append(f"{name:<{width}}  {va:>8.4f}  {vb:>8.4f}  {vb - va:>+8.4f}")
    return "\n".join(lines)


def _normalized(data: Path, folder: Path) -> Path:
    """`data` normalized by the data phase into one JSONL of rows the evaluation reads."""
    from phases.data import DataConfig, DataError, prepare_data

    try:
        prepared = prepare_data(DataConfig(train=str(data), eval_fraction=0.0, deduplicate=False))
    except DataError as exc:
        _refuse(f"--data: {exc}")
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in prepared.train))
    return path


def _resolve(reference: str) -> tuple[str, Any]:
    """(the model to load, the prompt artifact it applies or None) for one side."""
    from llmfinetune_agent.chat.models import ChatModelUnavailable, resolve_chat_model
    from llmfinetune_agent.run_store import RunStore
    from llmfinetune_agent.settings import Settings
    from models.prompt_artifact import Exemplar, PromptArtifact

    settings = Settings.from_env()
    try:
        resolved = resolve_chat_model(
            reference, store=RunStore(settings.database_url), cache_dir=settings.models_cache_dir
        )
    except ChatModelUnavailable as exc:
        _refuse(str(exc))
    prompt = None
    if resolved.artifact_prompt is not None:
        prompt = PromptArtifact(
            model=resolved.path,
            system_prompt=resolved.artifact_prompt,
            exemplars=[Exemplar(**e) for e in resolved.exemplars],
        )
    return resolved.path, prompt


def _score(reference: str, resolved: tuple[str, Any], config: Any, rows: Path, data: Path):
    """One side's evaluation: its model under its prompt artifact (if any). An evaluation
    error speaks of the run config's file and setting; here they are `--data` and `--metrics`."""
    from llmfinetune_agent.settings import Settings
    from models import ModelLoadError
    from phases.evaluation.errors import EvaluationError
    from phases.evaluation.prompt_comparison import evaluate_with_prompt

    path, prompt = resolved
    try:
        return evaluate_with_prompt(
            config,
            model=path,
            prompt=prompt,
            eval_path=rows,
            name=reference,
            cache_dir=Settings.from_env().models_cache_dir,
        )
    except (EvaluationError, ModelLoadError) as exc:
        message = str(exc).replace(str(rows), f"--data {data}")
        # The config's JSON list (`["perplexity"]`) becomes the flag's comma-separated form.
        message = re.sub(
            r"set evaluation\.metrics to (\[[^\]]*\])",
            lambda m: "pass --metrics " + re.sub(r'[\[\]" ]', "", m.group(1)),
            message,
        )
        _refuse(f"{reference}: {message}")


def _refuse(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(BAD_INPUT)
