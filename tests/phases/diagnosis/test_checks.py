"""The diagnosis checks on hand-built evidence (no model): thresholds, evidence, patches."""

from typing import Any

from llmfinetune_agent.config import apply_patch, parse_run_config
from models.config import MAX_TOKENS
from phases.diagnosis import diagnose_run

CONFIG = parse_run_config({"data": {"train": "t.jsonl"}, "training": {"learning_rate": 2e-4}})


def _kinds(**evidence: Any) -> dict[str, Any]:
    return {d.kind: d for d in diagnose_run(config=CONFIG, **evidence)}


def _losses(values: list[float | None]) -> list[dict[str, Any]]:
    return [{"step": i + 1, "loss": v, "grad_norm": 1.0} for i, v in enumerate(values)]


def test_nan_loss_is_divergence_and_suppresses_curve_checks() -> None:
    found = _kinds(log_history=_losses([3.0, 2.9, None, None]))
    assert set(found) == {"divergence"}
    assert found["divergence"].evidence["non_finite_at_step"] == 3
    assert apply_patch(CONFIG, found["divergence"].patch).training.learning_rate == 2e-5


def test_exploding_gradient_norm_is_divergence() -> None:
    history = [{"step": i, "loss": 2.0, "grad_norm": g} for i, g in enumerate([1, 1.2, 1, 90], 1)]
    assert _kinds(log_history=history)["divergence"].evidence["grad_norm_peak"] == 90


def test_oscillating_loss_is_lr_too_high_and_flat_loss_is_underfitting() -> None:
    found = _kinds(log_history=_losses([3.0, 4.0, 2.6, 4.1, 2.7, 4.0, 2.8, 3.9]))
    assert found["lr_too_high"].patch == {"training": {"learning_rate": 6.67e-5}}
    flat = _kinds(log_history=_losses([3.0, 2.95, 2.9, 2.9, 2.88]))
    assert set(flat) == {"underfitting"}
    assert apply_patch(CONFIG, flat["underfitting"].patch).training.epochs == 6
    # Still learning, only too slowly: the next iteration trains on from this one's end.
    assert flat["underfitting"].route == "continue"
    assert found["lr_too_high"].route is None  # follows from its patch: a training section


def test_healthy_curve_raises_nothing() -> None:
    assert _kinds(log_history=_losses([3.0, 2.2, 1.6, 1.2, 1.0, 0.9])) == {}


def test_tuned_equal_to_base_is_no_effect() -> None:
    evaluation = {
        "base": {"rougeL": 0.31, "perplexity": 40.0},
        "tuned": {"rougeL": 0.312, "perplexity": 39.8},
    }
    patch = _kinds(evaluation=evaluation)["no_effect"].patch
    assert patch == {"training": {"learning_rate": 6e-4, "epochs": 6.0}}
    evaluation["tuned"]["perplexity"] = 20.0
    assert "no_effect" not in _kinds(evaluation=evaluation)


def test_outputs_empty_and_repetitive() -> None:
    loop = "the answer is the answer is the answer is the answer is the answer is"
    predictions = [{"input": "q", "expected": "a", "got": g} for g in ["", " ", "", loop, "ok"]]
    found = _kinds(predictions=predictions)
    assert (
        found["empty_outputs"].severity == "error" and found["empty_outputs"].evidence["empty"] == 3
    )
    assert found["repetition"].evidence["repetitive"] == 1


def test_truncation_and_too_few_from_the_data_report() -> None:
    report = {
        "rows_read": 40,
        "train_rows": 8,
        "dropped_by_reason": {"too_long": 10},
        "dropped": [{"reason": "too_long", "detail": "700 tokens, longer than max_length 512"}],
        "duplicates_removed": 0,
        "overlaps_eval": 2,
    }
    found = _kinds(data_report=report)
    assert found["truncation"].patch == {"data": {"max_length": 1024}}
    assert found["too_few_examples"].severity == "warning"
    assert found["leakage"].severity == "info" and found["leakage"].patch is None


def _truncation(max_length: int, longest: int) -> Any:
    config = apply_patch(CONFIG, {"data": {"max_length": max_length}})
    detail = f"{longest} tokens, longer than max_length {max_length}"
    report = {
        "rows_read": 100,
        "dropped_by_reason": {"too_long": 10},
        "dropped": [{"reason": "too_long", "detail": detail}],
    }
    found = {d.kind: d for d in diagnose_run(config=config, data_report=report)}
    return config, found["truncation"]


def test_the_truncation_patch_raises_max_length_past_the_longest_dropped_row() -> None:
    for max_length, longest, proposed in [(8192, 9000, 16384), (20000, 30000, 32768)]:
        config, truncation = _truncation(max_length, longest)
        assert apply_patch(config, truncation.patch).data.max_length == proposed
    # Past the longest length a config accepts: a patch keeps what it can, the rest is named.
    config, truncation = _truncation(512, MAX_TOKENS + 1)
    assert apply_patch(config, truncation.patch).data.max_length == MAX_TOKENS
    assert "Shorten or remove the rows longer than" in truncation.rationale
    # Already at that limit: no patch can keep the rows, so there is none.
    _, truncation = _truncation(MAX_TOKENS, MAX_TOKENS + 1)
    assert (
        truncation.patch is None
        and "Shorten or remove the rows longer than" in truncation.rationale
    )


def test_most_severe_first() -> None:
    diagnoses = diagnose_run(
        config=CONFIG,
        log_history=_losses([3.0, None]),
        data_report={"rows_read": 10, "train_rows": 30, "dropped_by_reason": {}},
    )
    assert [d.severity for d in diagnoses] == ["error", "info"]
