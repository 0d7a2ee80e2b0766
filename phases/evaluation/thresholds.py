"""Thresholds: absolute bounds and margins over the base model, and the checks against them.

A threshold is a number (a minimum; a maximum for lower-is-better metrics such as perplexity) or
a rule object with any of `min`, `max`, `above_base`, `below_base`. Each key of a rule is one
check; the evaluation passes when every check does.
"""

import difflib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from phases.evaluation.results import ThresholdCheck

LOWER_IS_BETTER = ("perplexity",)
RULE_KEYS = ("min", "max", "above_base", "below_base")
SHAPES = (
    "a number (an absolute minimum, e.g. 0.6; a maximum for perplexity) or an object with any "
    'of min, max, above_base, below_base, e.g. {"min": 0.8} or {"above_base": 0.1}'
)


class ThresholdRule(BaseModel):
    """Bounds on one metric of the tuned model; every key that is set must hold."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = Field(None, description="The tuned value must be at least this.")
    max: float | None = Field(None, description="The tuned value must be at most this.")
    above_base: float | None = Field(
        None,
        description=(
            "The tuned value must exceed the base model's by at least this much (tuned >= base + "
            "above_base); for higher-is-better metrics. Needs compare_base."
        ),
    )
    below_base: float | None = Field(
        None,
        description=(
            "The tuned value must be under the base model's by at least this much (tuned <= "
            "base - below_base); for lower-is-better metrics such as perplexity. Needs "
            "compare_base."
        ),
    )

    @model_serializer(mode="wrap")
    def _set_keys_only(self, handler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    def rules(self) -> list[tuple[str, float]]:
        """(rule, value) for every key that is set, in RULE_KEYS order."""
        return [(key, getattr(self, key)) for key in RULE_KEYS if getattr(self, key) is not None]


Threshold = float | ThresholdRule


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked_rule(metric: str, rule: dict) -> dict:
    for key, value in rule.items():
        if key not in RULE_KEYS:
            near = difflib.get_close_matches(str(key), RULE_KEYS, n=1, cutoff=0.5)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ValueError(f"'{metric}' has unknown key '{key}'{hint}; a threshold is {SHAPES}.")
        if value is not None and not _is_number(value):
            raise ValueError(f"'{metric}.{key}' must be a finite number, got {value!r}.")
    if all(rule.get(key) is None for key in RULE_KEYS):
        raise ValueError(f"'{metric}' is an empty rule; a threshold is {SHAPES}.")
    low, high = rule.get("min"), rule.get("max")
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"'{metric}' asks for min {low:g} and max {high:g}: no value can be both; "
            "swap them, or keep the one you meant."
        )
    return rule


def normalize_thresholds(raw: Any) -> Any:
    """Check the shape of `evaluation.thresholds` (before pydantic), naming the bad metric."""
    if not isinstance(raw, dict):
        return raw  # pydantic's own "should be a valid dictionary"
    for metric, value in raw.items():
        if isinstance(value, ThresholdRule) or _is_number(value):
            continue
        if isinstance(value, dict):
            _checked_rule(metric, value)
            continue
        raise ValueError(f"'{metric}' is {value!r}; a threshold is {SHAPES}.")
    return raw


def rules_of(metric: str, threshold: Threshold) -> list[tuple[str, float]]:
    """The (rule, value) checks one threshold stands for; a bare number is min (max for
    lower-is-better metrics)."""
    if isinstance(threshold, ThresholdRule):
        return threshold.rules()
    return [("max" if metric in LOWER_IS_BETTER else "min", float(threshold))]


def direction_problems(thresholds: dict[str, Threshold]) -> list[str]:
    """Relative rules pointing the wrong way for their metric (above_base on perplexity)."""
    problems = []
    for metric, threshold in thresholds.items():
        rules = dict(rules_of(metric, threshold))
        if metric in LOWER_IS_BETTER and "above_base" in rules:
            problems.append(
                f"'{metric}' is lower-is-better: use below_base (tuned at least that much under "
                "the base) instead of above_base"
            )
        if metric not in LOWER_IS_BETTER and "below_base" in rules:
            problems.append(f"'{metric}' is higher-is-better: use above_base instead of below_base")
    return problems


def uses_base(thresholds: dict[str, Threshold]) -> list[str]:
    """Metrics whose threshold compares with the base model."""
    return [
        metric
        for metric, threshold in thresholds.items()
        if any(rule.endswith("_base") for rule, _ in rules_of(metric, threshold))
    ]


def _fmt_pair(value: float, required: float) -> tuple[str, str]:
    """Both numbers rounded to 2 places, or to 4 when 2 would make them look equal."""
    short = (f"{value:.2f}", f"{required:.2f}")
    if short[0] != short[1] or _on_line(value, required):
        return short
    return (f"{value:.4f}", f"{required:.4f}")


def _on_line(value: float, required: float) -> bool:
    """Equal but for floating-point rounding: 0.2 + 0.1 is 0.30000000000000004, and a mean of
    per-row scores can land a rounding error short. A value on the line passes."""
    return math.isclose(value, required, rel_tol=1e-9, abs_tol=1e-12)


def _required(rule: str, bound: float, base: float | None) -> float | None:
    if rule in ("min", "max"):
        return bound
    if base is None or not math.isfinite(base):
        return None
    return base + bound if rule == "above_base" else base - bound


def check_one(
    metric: str, rule: str, bound: float, tuned: float | None, base: float | None
) -> ThresholdCheck:
    """One rule on one metric: the number the tuned model needed, and whether it got there."""
    required = _required(rule, bound, base)
    at_least = rule in ("min", "above_base")
    sign = "≥" if at_least else "≤"
    relative = (
        f" (base {base:.2f} {'+' if at_least else '-'} {bound:g})" if base is not None else ""
    )
    relative = relative if rule.endswith("_base") else ""
    if tuned is None or not math.isfinite(tuned):
        passed, summary = False, f"{metric} was not computed (or is not finite)"
    elif required is None:
        passed, summary = False, f"{metric}: no base result to compare with ({rule} {bound:g})"
    else:
        passed = _on_line(tuned, required) or (tuned >= required if at_least else tuned <= required)
        shown, needed = _fmt_pair(tuned, required)
        verb = sign if passed else ("<" if at_least else ">")
        summary = f"{metric} {shown} {verb} {needed} required{relative}"
    return ThresholdCheck(
        metric=metric,
        rule=rule,
        bound=bound,
        required=required,
        tuned=tuned,
        base=base,
        higher_is_better=metric not in LOWER_IS_BETTER,
        passed=passed,
        summary=summary,
    )


def check_thresholds(
    thresholds: dict[str, Threshold],
    tuned: dict[str, float],
    base: dict[str, float] | None = None,
) -> list[ThresholdCheck]:
    """One check per rule of every threshold; a metric that was not computed fails."""
    base = base or {}
    return [
        check_one(metric, rule, bound, tuned.get(metric), base.get(metric))
        for metric, threshold in thresholds.items()
        for rule, bound in rules_of(metric, threshold)
    ]
