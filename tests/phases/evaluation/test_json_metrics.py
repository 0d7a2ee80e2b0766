"""JSON metrics: a model that copies the answer's format, not its content, scores low."""

import pytest

from phases.evaluation import EvaluationConfig, compute_text_metrics
from phases.evaluation.json_metrics import json_equal, row_json_field_accuracy
from phases.evaluation.thresholds import check_thresholds

PEOPLE = [("Ann", 31, "Oslo"), ("Bob", 45, "Lima"), ("Cyd", 22, "Rome"), ("Dee", 38, "Kyiv")]
REFERENCES = [f'{{"name": "{n}", "age": {a}, "city": "{c}"}}' for n, a, c in PEOPLE]
# Right keys, right name, but the same age and city for every input.
COPIER = [f'{{"name": "{n}", "age": 30, "city": "Paris"}}' for n, _, _ in PEOPLE]
JSON_METRICS = ["rougeL", "exact_match", "json_valid", "json_field_accuracy"]


def test_format_copier_scores_high_rouge_but_low_field_accuracy() -> None:
    values = compute_text_metrics(JSON_METRICS, COPIER, REFERENCES)
    assert values["rougeL"] > 0.6  # what made the quickstart "pass"
    assert values["json_valid"] == 1.0
    assert values["json_field_accuracy"] == pytest.approx(1 / 3)  # only the name is right
    assert values["exact_match"] == 0.0


def test_format_copier_fails_an_exact_match_threshold_that_rouge_would_pass() -> None:
    config = EvaluationConfig(
        metrics=JSON_METRICS, thresholds={"rougeL": 0.6, "exact_match": {"min": 0.8}}
    )
    values = compute_text_metrics(config.metrics, COPIER, REFERENCES)
    checks = {c.metric: c for c in check_thresholds(config.thresholds, values)}
    assert checks["rougeL"].passed
    assert not checks["exact_match"].passed
    assert checks["exact_match"].summary == "exact_match 0.00 < 0.80 required"


def test_exact_match_compares_json_as_parsed_values() -> None:
    reordered = ['{"age":31,"city":"Oslo",  "name":"Ann"}', '{"name": "Bob", "age": 45}']
    values = compute_text_metrics(["exact_match", "json_field_accuracy"], reordered, REFERENCES[:2])
    assert values["exact_match"] == 0.5  # key order and spacing ignored; a missing key is not
    assert values["json_field_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    # Values compare exactly: a string "31" or a differently cased city is wrong.
    assert row_json_field_accuracy(
        '{"name": "Ann", "age": "31", "city": "oslo"}', REFERENCES[0]
    ) == (pytest.approx(1 / 3))


def test_invalid_json_scores_zero_and_is_not_valid() -> None:
    # NaN and Infinity: Python's parser reads them, JSON has no such values.
    answers = ['{"name": "Ann", "age": 31, "city": "Oslo"', "[1, 2]", "Ann, 31, Oslo", ""]
    answers += ['{"name": "Dee", "age": NaN, "city": "Kyiv"}', '{"name": "Ann", "age": Infinity}']
    values = compute_text_metrics(JSON_METRICS[1:], answers, REFERENCES + REFERENCES[:2])
    assert values == {"exact_match": 0.0, "json_valid": 0.0, "json_field_accuracy": 0.0}


def test_json_equality_tells_booleans_from_numbers() -> None:
    assert json_equal({"a": 1, "b": [1.0]}, {"b": [1], "a": 1})
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal([1, 2], [2, 1])


def test_text_references_keep_normalized_string_match() -> None:
    values = compute_text_metrics(
        ["exact_match"], ["  Hello  World", "42"], ["hello world", "42.0"]
    )
    assert values["exact_match"] == 0.5  # "42" is text here, not the number 42


def test_json_metrics_are_added_when_references_are_json_objects() -> None:
    config = EvaluationConfig(metrics=["rougeL"])
    assert config.with_metrics_for(REFERENCES).metrics == [
        "rougeL",
        "exact_match",
        "json_valid",
        "json_field_accuracy",
    ]
    mostly_text = [*REFERENCES[:1], "yes", "no"]
    assert config.with_metrics_for(mostly_text).metrics == ["rougeL"]
    described = EvaluationConfig.model_json_schema()["properties"]["metrics"]["description"]
    assert "JSON objects" in described and "added" in described
