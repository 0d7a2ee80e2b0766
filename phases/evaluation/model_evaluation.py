"""`evaluate_model`: one model, one eval set -> metrics and per-example predictions.

The eval data and metric names are checked first, so bad input fails before a model loads;
then the model is loaded once, answers are generated in batches, and the metrics computed.
When (nearly) every reference is a JSON object, the JSON metrics join the configured ones.
"""

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from models.config import ModelConfig
from phases.evaluation.config import EvaluationConfig
from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.eval_data import EvalExample, check_references, load_eval_examples
from phases.evaluation.generation import generate_answers, reference_loss
from phases.evaluation.json_metrics import JSON_ROW_METRICS, parse_structured, row_scores
from phases.evaluation.results import EvaluationResult, Prediction
from phases.evaluation.text_metrics import check_metrics, compute_text_metrics, per_example_rouge_l
from phases.evaluation.tool_metrics import TOOL_METRICS, has_tool_references, row_tool_scores

ModelRef = str | Path | ModelConfig


def model_name(model: ModelRef) -> str:
    """A readable name of a model reference."""
    return model.name_or_path if isinstance(model, ModelConfig) else str(model)


def load_checked_examples(config: EvaluationConfig, eval_path: Path) -> list[EvalExample]:
    """Eval examples after every check that needs no model (data, references, metric names)."""
    examples = load_eval_examples(Path(eval_path), config.max_examples)
    metrics = metrics_config(config, examples).metrics
    check_references(examples, metrics, Path(eval_path))
    check_metrics(metrics)
    _check_json_references(examples, metrics, Path(eval_path))
    _check_tool_references(examples, metrics, Path(eval_path))
    return examples


def metrics_config(config: EvaluationConfig, examples: list[EvalExample]) -> EvaluationConfig:
    """`config` with the metrics these examples call for (see `with_metrics_for`)."""
    return config.with_metrics_for([e.reference for e in examples])


def _check_json_references(examples: list[EvalExample], metrics: list[str], path: Path) -> None:
    wanted = [m for m in metrics if m in JSON_ROW_METRICS]
    references = [e.reference for e in examples if e.reference is not None]
    if wanted and not any(parse_structured(r) is not None for r in references):
        raise EvaluationInputError(
            f"{path}: {', '.join(wanted)} compare JSON answers, but none of the "
            f"{len(references)} references is a JSON object or array; remove them from "
            "evaluation.metrics and evaluation.thresholds."
        )


def _check_tool_references(examples: list[EvalExample], metrics: list[str], path: Path) -> None:
    wanted = [m for m in metrics if m in TOOL_METRICS]
    if wanted and not has_tool_references([e.reference for e in examples]):
        raise EvaluationInputError(
            f"{path}: {', '.join(wanted)} score tool calls, but no eval turn calls a tool; "
            "remove them from evaluation.metrics and evaluation.thresholds, or evaluate on "
            "tool-calling data."
        )


def load_for_generation(model: ModelRef, cache_dir: Path | None):
    from models.loading import load_model_and_tokenizer

    config_or_path = model if isinstance(model, ModelConfig) else str(model)
    return load_model_and_tokenizer(config_or_path, cache_dir=cache_dir, for_generation=True)


def _perplexity(model, tokenizer, examples: list[EvalExample], batch_size: int) -> float:
    total, count = reference_loss(model, tokenizer, examples, batch_size=batch_size)
    if not count:
        return float("nan")
    try:
        return math.exp(total / count)
    except OverflowError:  # a mean token loss past ~709 nats (a blown-up model): not finite
        return math.inf


def row_metric(config: EvaluationConfig, has_answers: bool) -> str | None:
    """The per-row score that ranks examples: JSON field accuracy for JSON data, else ROUGE-L."""
    if not has_answers:
        return None
    return "json_field_accuracy" if "json_field_accuracy" in config.metrics else "rougeL"


def _predictions(
    examples: list[EvalExample], answers: list[str], config: EvaluationConfig
) -> list[Prediction]:
    if not answers:  # plain text data: nothing generated
        return [
            Prediction(input=e.display_input, expected=None, got=None, score=None) for e in examples
        ]
    references = [e.reference for e in examples]
    rouge = per_example_rouge_l(answers, references)
    ranked_by = row_metric(config, True)
    predictions = []
    for e, a, r in zip(examples, answers, rouge, strict=True):
        scores = {
            "rougeL": r,
            **row_scores(a, e.reference, config.metrics, normalize=config.exact_match_normalize),
            **(row_tool_scores(a, e.reference) if e.kind == "tool_chat" else {}),
        }
        score = scores.get(ranked_by, scores["exact_match"])  # a non-JSON row in JSON data
        predictions.append(
            Prediction(
                input=e.display_input, expected=e.reference, got=a, score=score, scores=scores
            )
        )
    return predictions


def evaluate_loaded(
    model,
    tokenizer,
    examples: list[EvalExample],
    config: EvaluationConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], list[Prediction]]:
    """Metrics and predictions of an already loaded model (eval mode, left padding); the
    metrics are `config.metrics` as given (see `metrics_config` for the data's defaults)."""
    answers: list[str] = []
    if any(e.reference is not None for e in examples):
        answers = generate_answers(
            model,
            tokenizer,
            examples,
            max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size,
            do_sample=config.do_sample,
            temperature=config.temperature,
            progress=progress,
        )
    metrics: dict[str, float] = {}
    if answers:
        references = [e.reference for e in examples]
        metrics = compute_text_metrics(
            config.metrics,
            answers,
            references,
            exact_match_normalize=config.exact_match_normalize,
        )
    if "perplexity" in config.metrics:
        metrics["perplexity"] = _perplexity(model, tokenizer, examples, config.batch_size)
    ordered = {name: metrics[name] for name in config.metrics if name in metrics}
    return ordered, _predictions(examples, answers, config)


def evaluate_model(
    config: EvaluationConfig,
    *,
    model: ModelRef,
    eval_path: Path,
    output_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Evaluate `model` (hub id, local dir, PEFT adapter dir or ModelConfig) on `eval_path`.

    Raises EvaluationInputError / MetricUnavailableError before loading the model when the
    data or metrics are unusable. JSON-object references add the JSON metrics. `progress(done, total)` is called after each generated
    batch. With `output_dir`, writes `evaluation_result.json` there.
    """
    started = time.perf_counter()
    examples = load_checked_examples(config, eval_path)
    config = metrics_config(config, examples)
    loaded_model, tokenizer = load_for_generation(model, cache_dir)
    metrics, predictions = evaluate_loaded(
        loaded_model, tokenizer, examples, config, progress=progress
    )
    result = EvaluationResult(
        model=model_name(model),
        metrics=metrics,
        predictions=predictions,
        n_examples=len(examples),
        seconds=round(time.perf_counter() - started, 3),
        row_metric=row_metric(config, any(p.got is not None for p in predictions)),
    )
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "evaluation_result.json").write_text(
            json.dumps(result.model_dump(), indent=2), encoding="utf-8"
        )
    return result
