"""The acceptance rule: which checks decide whether a tuned model passes its evaluation.

With thresholds configured, those thresholds are the rule. With none, a run is not accepted
on faith: the tuned model must be at least as good as its base on the run's primary metric
(the first metric listed in `evaluation.metrics`) and, when the references are JSON objects,
on the JSON metrics (exact_match, json_valid, json_field_accuracy). Either way, a tuned model
worse than its base on every metric both were scored on never passes.
"""

from phases.evaluation.config import JSON_DEFAULT_METRICS, EvaluationConfig
from phases.evaluation.results import EvaluationResult, ThresholdCheck
from phases.evaluation.thresholds import LOWER_IS_BETTER, check_one, check_thresholds

CONFIGURED = "the configured thresholds"


def primary_metric(config: EvaluationConfig, computed: list[str] | None = None) -> str | None:
    """The run's primary metric: the first one listed in `evaluation.metrics` (of those in
    `computed`, when given: plain-text data yields only perplexity, a reward model only its
    ranking metrics, which then come first)."""
    if computed is None:
        return config.metrics[0] if config.metrics else None
    listed = [m for m in config.metrics if m in computed]
    return (listed or computed or [None])[0]


def _not_worse(metric: str, tuned: dict[str, float], base: dict[str, float]) -> ThresholdCheck:
    """tuned >= base (tuned <= base for lower-is-better metrics), as a margin-0 rule."""
    rule = "below_base" if metric in LOWER_IS_BETTER else "above_base"
    return check_one(metric, rule, 0.0, tuned.get(metric), base.get(metric))


def default_metrics(
    configured: EvaluationConfig, computed: list[str], structured: bool
) -> list[str]:
    """The metrics the default rule holds the tuned model to (not worse than the base)."""
    wanted = [m for m in [primary_metric(configured, computed)] if m]
    if structured:
        wanted += [m for m in JSON_DEFAULT_METRICS if m not in wanted and m in computed]
    return wanted


def planned_rule(config: EvaluationConfig) -> str:
    """The rule in words, before anything is evaluated (for the plan)."""
    if config.thresholds:
        return f"{CONFIGURED} ({', '.join(config.thresholds)})"
    if not config.compare_base:
        return (
            "none: no thresholds are set and the base model is not compared "
            "(evaluation.compare_base is false), so any finished run passes"
        )
    primary = primary_metric(config)
    return (
        f"default (no thresholds set): the tuned model must not be worse than the base on "
        f"{primary} (the first listed metric) and, when the references are JSON, on "
        f"{', '.join(m for m in JSON_DEFAULT_METRICS if m != primary)}"
    )


def worse_everywhere(tuned: dict[str, float], base: dict[str, float]) -> list[str]:
    """The metrics both models have, when the tuned model is strictly worse on every one of
    them (else [])."""
    shared = [m for m in tuned if m in base]
    worse = [
        m for m in shared if (tuned[m] > base[m] if m in LOWER_IS_BETTER else tuned[m] < base[m])
    ]
    return worse if shared and worse == shared else []


def acceptance_checks(
    configured: EvaluationConfig,
    tuned: EvaluationResult,
    base: EvaluationResult | None,
    structured: bool,
) -> tuple[list[ThresholdCheck], str]:
    """(checks, the rule in words) for this evaluation: see the module docstring.

    `configured` is the evaluation section as the user wrote it (its first metric is the
    primary one); `structured` says the references are JSON objects.
    """
    base_metrics = base.metrics if base else {}
    if configured.thresholds:
        checks = check_thresholds(configured.thresholds, tuned.metrics, base_metrics)
        worse = worse_everywhere(tuned.metrics, base_metrics)
        if not worse:
            return checks, CONFIGURED
        guard = _not_worse(worse[0], tuned.metrics, base_metrics)
        return [*checks, guard], (
            f"{CONFIGURED}, and not worse than the base on every metric (the tuned model is "
            f"worse on all of {', '.join(worse)})"
        )
    if base is None:
        return [], planned_rule(configured)
    metrics = default_metrics(configured, list(tuned.metrics), structured)
    checks = [_not_worse(m, tuned.metrics, base_metrics) for m in metrics]
    worse = worse_everywhere(tuned.metrics, base_metrics)
    if worse and not any(c.metric == worse[0] for c in checks):
        checks.append(_not_worse(worse[0], tuned.metrics, base_metrics))
    return checks, ("default (no thresholds set): not worse than the base on " + ", ".join(metrics))
