"""`compare_reward_models`: a trained reward model against the base on held-out preference pairs.

A reward model writes no text: it scores a (prompt, response) pair. What matters is whether it
ranks the chosen response above the rejected one, so the metrics are `pairwise_accuracy` (the
share of pairs ranked right) and `mean_margin` (chosen minus rejected score, averaged). The base
is the base model with a new score head (seeded, as training starts from it): about chance.
The report has the same shape and files as `compare_models`, so gates, thresholds and the
debugger read it alike.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.config import ModelConfig
from phases.evaluation.comparison import build_report
from phases.evaluation.config import EvaluationConfig
from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.model_evaluation import model_name
from phases.evaluation.report import write_report
from phases.evaluation.results import EvaluationReport, EvaluationResult, Prediction

REWARD_METRICS = ("pairwise_accuracy", "mean_margin")
REWARD_NOTE = (
    "A reward model scores responses rather than writing them: it is judged by how often it "
    "ranks the chosen response above the rejected one (pairwise_accuracy) and by how far "
    "(mean_margin); text metrics do not apply."
)
BASE_HEAD_SEED = 42  # the untrained head is random: seed it so the base's figures repeat


def compare_reward_models(
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
    """Score the eval pairs with the tuned reward model (and the base, unless
    `config.compare_base` is off); write the report files into `output_dir`."""
    import torch

    from phases.training.model_access import load_reward_model
    from phases.training.reward import load_scorer

    pairs = read_pairs(Path(eval_path), config.max_examples)
    base_result = None
    if config.compare_base:
        torch.manual_seed(BASE_HEAD_SEED)
        scorer, tokenizer = load_reward_model(base, cache_dir=cache_dir)
        base_result = score_pairs(scorer.eval(), tokenizer, pairs, model_name(base), progress)
    scorer, tokenizer = load_scorer(Path(tuned))
    tuned_result = score_pairs(scorer, tokenizer, pairs, str(tuned), progress)
    report = build_report(config, base_result, tuned_result, notes=[REWARD_NOTE])
    write_report(report, Path(output_dir), log_history_path)
    return report


def read_pairs(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """The eval split's preference pairs (`prompt`, `chosen`, `rejected`), at most `limit`."""
    from phases.data import read_jsonl

    rows = read_jsonl(path)
    pairs = [r for r in rows if all(k in r for k in ("prompt", "chosen", "rejected"))]
    if not pairs:
        raise EvaluationInputError(
            f"{path}: no preference pairs (rows with prompt, chosen and rejected) to score the "
            "reward model on"
        )
    return pairs[:limit] if limit else pairs


def score_pairs(
    scorer: Any,
    tokenizer: Any,
    pairs: list[dict[str, Any]],
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Score each pair's chosen and rejected response; metrics and one prediction per pair."""
    from phases.training.reward import reward_of

    start, predictions = time.perf_counter(), []
    for done, pair in enumerate(pairs, 1):
        chosen = reward_of(scorer, tokenizer, pair["prompt"], pair["chosen"])
        rejected = reward_of(scorer, tokenizer, pair["prompt"], pair["rejected"])
        right = float(chosen > rejected)
        predictions.append(
            Prediction(
                input=_text(pair["prompt"]),
                expected=_text(pair["chosen"]),
                got=f"chosen {chosen:.3f} vs rejected {rejected:.3f}",
                score=right,
                scores={"pairwise_accuracy": right, "margin": chosen - rejected},
            )
        )
        if progress:
            progress(done, len(pairs))
    n = len(predictions)
    metrics = {
        "pairwise_accuracy": sum(p.scores["pairwise_accuracy"] for p in predictions) / n,
        "mean_margin": sum(p.scores["margin"] for p in predictions) / n,
    }
    return EvaluationResult(
        model=name,
        metrics=metrics,
        predictions=predictions,
        n_examples=n,
        seconds=time.perf_counter() - start,
        row_metric="pairwise_accuracy",
    )


def _text(value: Any) -> str:
    """A prompt or response as a person reads it (chat turns as 'role: text')."""
    if isinstance(value, list):
        return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    return str(value)
