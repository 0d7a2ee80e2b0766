"""`compare_prompts`: one model under two prompts on the eval split — the plain instruction
(the base) against a prompt artifact (the tuned side) — with the same metrics, thresholds and
report as a base-versus-tuned model comparison.

    report = compare_prompts(config, base=ModelConfig(name_or_path="builtin:tiny-llama"),
                             tuned=Path("prompt.json"), eval_path=Path("eval.jsonl"),
                             output_dir=Path("evaluation"))

The model is loaded once; each eval example gets the prompt applied the way the optimizer,
the generate endpoint and the chat adapter apply it (`models.prompt_artifact`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from models.config import ModelConfig
from models.prompt_artifact import (
    PromptArtifact,
    PromptArtifactError,
    apply_to_messages,
    apply_to_text,
    read_prompt_artifact,
)
from phases.evaluation.comparison import added_metrics_note, build_report
from phases.evaluation.config import EvaluationConfig
from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.eval_data import EvalExample
from phases.evaluation.model_evaluation import (
    evaluate_loaded,
    load_checked_examples,
    load_for_generation,
    metrics_config,
    row_metric,
)
from phases.evaluation.report import write_report
from phases.evaluation.results import EvaluationReport, EvaluationResult

PROMPTABLE_KINDS = ("chat", "prompt_completion")


def prompted_examples(examples: list[EvalExample], prompt: PromptArtifact) -> list[EvalExample]:
    """`examples` with the prompt's system text and exemplars put before each input."""
    out = []
    for example in examples:
        if example.kind not in PROMPTABLE_KINDS:
            raise EvaluationInputError(
                f"a prompt applies to chat or prompt/completion data, not {example.kind} data"
            )
        if isinstance(example.prompt, list):
            out.append(replace(example, prompt=apply_to_messages(prompt, example.prompt)))
        else:
            out.append(replace(example, prompt=apply_to_text(prompt, example.prompt)))
    return out


def base_prompt_of(prompt: PromptArtifact) -> PromptArtifact:
    """The baseline of a prompt artifact: its plain instruction, no exemplars."""
    return PromptArtifact(model=prompt.model, system_prompt=prompt.base_prompt or "")


def evaluate_prompt(
    model,
    tokenizer,
    examples: list[EvalExample],
    config: EvaluationConfig,
    *,
    name: str,
    prompt: PromptArtifact | None,
) -> EvaluationResult:
    """One prompt's metrics and predictions with an already loaded model (None: the model on
    the rows as they are, whatever their format)."""
    started = time.perf_counter()
    shown = examples if prompt is None else prompted_examples(examples, prompt)
    metrics, predictions = evaluate_loaded(model, tokenizer, shown, config)
    return EvaluationResult(
        model=name,
        metrics=metrics,
        predictions=predictions,
        n_examples=len(examples),
        seconds=round(time.perf_counter() - started, 3),
        row_metric=row_metric(config, any(p.got is not None for p in predictions)),
    )


def compare_prompts(
    config: EvaluationConfig,
    *,
    base: ModelConfig | str,
    tuned: str | Path,
    eval_path: Path,
    output_dir: Path,
    cache_dir: Path | None = None,
    log_history_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """The plain instruction (`base` model, the artifact's base prompt) against the prompt
    artifact `tuned`, on `eval_path`; the report is written to `output_dir` as for models."""
    try:
        prompt = read_prompt_artifact(Path(tuned))
    except PromptArtifactError as exc:
        raise EvaluationInputError(str(exc)) from None
    examples = load_checked_examples(config, eval_path)
    configured, config = config, metrics_config(config, examples)
    model, tokenizer = load_for_generation(base, cache_dir)
    sides = {"base": base_prompt_of(prompt)} if config.compare_base else {}
    sides["tuned"] = prompt  # the plain instruction is scored only when it is compared
    results = {}
    for done, (side, applied) in enumerate(sides.items(), start=1):
        name = f"{prompt.model} ({'plain instruction' if side == 'base' else tuned})"
        results[side] = evaluate_prompt(
            model, tokenizer, examples, config, name=name, prompt=applied
        )
        if progress:
            progress(done * len(examples), len(sides) * len(examples))
    report = build_report(
        config,
        results.get("base"),
        results["tuned"],
        notes=[
            "Prompt run: the same weights under the plain instruction (base) and under the "
            "optimized prompt with its exemplars (tuned).",
            *added_metrics_note(configured, config),
        ],
    )
    write_report(report, Path(output_dir), log_history_path)
    return report


def evaluate_with_prompt(
    config: EvaluationConfig,
    *,
    model: ModelConfig | str,
    prompt: PromptArtifact | None,
    eval_path: Path,
    name: str,
    cache_dir: Path | None = None,
) -> EvaluationResult:
    """One model (under a prompt artifact, when given) on `eval_path`: its metrics and
    predictions, the data's default metrics added as `evaluate_model` adds them."""
    examples = load_checked_examples(config, eval_path)
    config = metrics_config(config, examples)
    loaded, tokenizer = load_for_generation(model, cache_dir)
    return evaluate_prompt(loaded, tokenizer, examples, config, name=name, prompt=prompt)
