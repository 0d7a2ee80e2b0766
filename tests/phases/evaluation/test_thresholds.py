"""Thresholds: absolute bounds, margins over the base model, lower-is-better, bad shapes."""

import pytest

from llmfinetune_agent.config import ConfigError, parse_run_config
from phases.evaluation import EvaluationConfig
from phases.evaluation.thresholds import check_thresholds

METRICS = ["rougeL", "exact_match", "perplexity"]


def _checks(thresholds: dict, tuned: dict, base: dict | None = None) -> list:
    config = EvaluationConfig(metrics=METRICS, thresholds=thresholds)
    return check_thresholds(config.thresholds, tuned, base)


def test_a_bare_number_stays_an_absolute_minimum() -> None:
    config = EvaluationConfig(metrics=METRICS, thresholds={"rougeL": 0.6})
    assert config.model_dump()["thresholds"] == {"rougeL": 0.6}
    (check,) = check_thresholds(config.thresholds, {"rougeL": 0.59})
    assert (check.rule, check.required, check.passed) == ("min", 0.6, False)


def test_above_base_needs_the_margin_over_the_base() -> None:
    thresholds = {"rougeL": {"above_base": 0.1}}
    (barely,) = _checks(thresholds, {"rougeL": 0.55}, {"rougeL": 0.5})
    assert not barely.passed and barely.required == pytest.approx(0.6)
    assert barely.summary == "rougeL 0.55 < 0.60 required (base 0.50 + 0.1)"
    (enough,) = _checks(thresholds, {"rougeL": 0.61}, {"rougeL": 0.5})
    assert enough.passed and enough.base == 0.5
    (no_base,) = _checks(thresholds, {"rougeL": 0.9}, {})
    assert not no_base.passed and "no base result" in no_base.summary


def test_a_tuned_model_exactly_on_the_line_passes() -> None:
    """0.2 + 0.1 is 0.30000000000000004: a tuned 0.3 failed "0.3000 < 0.3000 required"."""
    (margin,) = _checks({"rougeL": {"above_base": 0.1}}, {"rougeL": 0.3}, {"rougeL": 0.2})
    assert margin.passed and margin.summary == "rougeL 0.30 ≥ 0.30 required (base 0.20 + 0.1)"
    mean_of_rows = sum([0.1] * 7) / 7  # 0.09999999999999999
    (bound,) = _checks({"rougeL": 0.1}, {"rougeL": mean_of_rows})
    assert bound.passed
    (under,) = _checks(
        {"perplexity": {"below_base": 0.1}}, {"perplexity": 0.2}, {"perplexity": 0.3}
    )
    assert under.passed
    (short,) = _checks({"rougeL": {"above_base": 0.1}}, {"rougeL": 0.2999}, {"rougeL": 0.2})
    assert not short.passed


def test_perplexity_is_lower_is_better() -> None:
    (bare,) = _checks({"perplexity": 20.0}, {"perplexity": 25.0})
    assert bare.rule == "max" and not bare.passed
    (relative,) = _checks(
        {"perplexity": {"below_base": 5}}, {"perplexity": 14.0}, {"perplexity": 20.0}
    )
    assert relative.passed and relative.required == 15.0
    (worse,) = _checks(
        {"perplexity": {"below_base": 5}}, {"perplexity": 16.0}, {"perplexity": 20.0}
    )
    assert not worse.passed and worse.summary.startswith("perplexity 16.00 > 15.00 required")


def test_a_rule_with_two_keys_makes_two_checks_and_nan_fails() -> None:
    checks = _checks(
        {"exact_match": {"min": 0.5, "above_base": 0.2}}, {"exact_match": 0.6}, {"exact_match": 0.5}
    )
    assert [(c.rule, c.passed) for c in checks] == [("min", True), ("above_base", False)]
    (nan,) = _checks({"rougeL": 0.1}, {"rougeL": float("nan")})
    assert not nan.passed


def _config_with(thresholds: dict, **evaluation) -> dict:
    return {
        "name": "t",
        "model": {"name_or_path": "builtin:tiny-llama"},
        "data": {"train": "train.jsonl"},
        "evaluation": {"metrics": METRICS, "thresholds": thresholds, **evaluation},
    }


@pytest.mark.parametrize(
    ("thresholds", "extra", "message"),
    [
        ({"rougeL": {"mni": 0.5}}, {}, "'rougeL' has unknown key 'mni' (did you mean 'min'?)"),
        ({"rougeL": "high"}, {}, "'rougeL' is 'high'; a threshold is a number"),
        ({"rougeL": {}}, {}, "'rougeL' is an empty rule"),
        ({"rougeL": {"min": 0.9, "max": 0.5}}, {}, "'rougeL' asks for min 0.9 and max 0.5"),
        ({"rougeL": {"min": "0.5"}}, {}, "'rougeL.min' must be a finite number"),
        ({"perplexity": {"above_base": 1}}, {}, "use below_base"),
        ({"rougeL": {"below_base": 1}}, {}, "use above_base"),
        ({"rougeL": {"above_base": 0.1}}, {"compare_base": False}, "compare_base is false"),
    ],
)
def test_bad_threshold_shapes_are_config_errors_naming_the_field(
    thresholds: dict, extra: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_run_config(_config_with(thresholds, **extra), "run.json")
    text = str(caught.value)
    assert "evaluation" in text and message in text, text


def test_thresholds_on_json_metrics_need_not_be_listed() -> None:
    config = EvaluationConfig(metrics=["rougeL"], thresholds={"json_field_accuracy": {"min": 0.9}})
    assert config.with_metrics_for(["yes"]).metrics == ["rougeL", "json_field_accuracy"]
