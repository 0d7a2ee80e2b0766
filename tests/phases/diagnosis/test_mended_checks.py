"""The checks the recall benchmark needed, on hand-built evidence (no model): a loss that rises
without NaN, a run stopped after a few steps, answers that ignore the input, JSON answers with
the right keys and wrong values."""

import json
from typing import Any

from llmfinetune_agent.config import apply_patch, parse_run_config
from phases.diagnosis import diagnose_run

CONFIG = parse_run_config(
    {"data": {"train": "t.jsonl"}, "training": {"learning_rate": 0.5, "epochs": 1}}
)
NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn"]
CITIES = ["Oslo", "Lima", "Rome", "Kyiv", "Doha", "Bern"]


def _kinds(**evidence: Any) -> dict[str, Any]:
    return {d.kind: d for d in diagnose_run(config=CONFIG, **evidence)}


def _losses(values: list[float]) -> list[dict[str, Any]]:
    return [{"step": 5 * (i + 1), "loss": v, "grad_norm": 1.0} for i, v in enumerate(values)]


def _json_predictions(answer) -> list[dict[str, Any]]:
    """One row per person; `answer(i)` gives the model's dict for row i."""
    return [
        {
            "input": f"{n} lives in {c}.",
            "expected": json.dumps({"name": n, "city": c}),
            "got": json.dumps(answer(i)),
            "score": None,
        }
        for i, (n, c) in enumerate(zip(NAMES, CITIES, strict=True))
    ]


def test_a_loss_rising_threefold_without_nan_is_lr_too_high_not_underfitting() -> None:
    # The run: lr 0.5, loss 11.7 -> 31.6, below divergence's 3x spike.
    found = _kinds(log_history=_losses([11.7, 19.0, 26.4, 31.6, 29.8, 30.5]))
    too_high = found["lr_too_high"]
    assert too_high.severity == "error"
    assert too_high.evidence["first_loss"] == 11.7 and too_high.evidence["final_loss"] > 29
    assert apply_patch(CONFIG, too_high.patch).training.learning_rate == 1e-3
    assert not {"divergence", "underfitting"} & set(found)


def test_a_loss_that_climbed_twofold_and_came_back_is_a_warning() -> None:
    too_high = _kinds(log_history=_losses([7.7, 22.8, 18.0, 9.0, 6.1, 5.0]))["lr_too_high"]
    assert too_high.severity == "warning"
    assert too_high.evidence["peak_loss"] == 22.8


def test_three_steps_with_garbage_answers_is_underfitting() -> None:
    garbage = [{"input": "q", "expected": "Oslo", "got": '" " " "', "score": 0.0}] * 4
    found = _kinds(
        log_history=_losses([7.7, 6.9, 6.5]),
        training={"global_step": 3},
        predictions=garbage,
    )
    underfitting = found["underfitting"]
    assert underfitting.evidence["steps"] == 3 and underfitting.evidence["points"] == 3
    assert underfitting.route == "continue"
    assert apply_patch(CONFIG, underfitting.patch).training.epochs == 4  # 3 steps: 4x


def test_a_run_shorter_than_one_logging_interval_is_underfitting() -> None:
    # max_steps 3 < logging_steps 5: the Trainer logs no per-step loss, only the run's mean
    # train_loss and the eval loss at the end.
    three_steps = apply_patch(CONFIG, {"training": {"max_steps": 3}})
    history = [{"eval_loss": 6.6, "step": 3}, {"train_loss": 7.4, "step": 3}]
    garbage = [{"input": "q", "expected": "Oslo", "got": '" " " "', "score": 0.0}] * 4
    for training in ({"global_step": 3}, None):  # the step from the train_loss entry
        found = {
            d.kind: d
            for d in diagnose_run(
                config=three_steps, log_history=history, training=training, predictions=garbage
            )
        }
        underfitting = found["underfitting"]
        assert underfitting.evidence["steps"] == 3 and underfitting.evidence["final_loss"] == 7.4
        assert underfitting.route == "continue"
        assert apply_patch(three_steps, underfitting.patch).training.max_steps == 12  # 4x
    good = [{"input": "q", "expected": "Oslo", "got": "Oslo", "score": 1.0}] * 4
    healthy = diagnose_run(
        config=three_steps, log_history=history, training={"global_step": 3}, predictions=good
    )
    assert healthy == []


def test_a_steep_loss_at_the_end_is_underfitting_only_when_the_answers_are_poor() -> None:
    history = _losses([7.7, 5.0, 3.5, 2.4, 1.6, 1.1])  # fell well below 70%: no plateau
    poor = [{"input": "q", "expected": "Oslo", "got": "Lima", "score": 0.0}] * 4
    good = [{"input": "q", "expected": "Oslo", "got": "Oslo", "score": 1.0}] * 4
    steps = {"global_step": 30}
    assert "underfitting" in _kinds(log_history=history, training=steps, predictions=poor)
    assert "underfitting" not in _kinds(log_history=history, training=steps, predictions=good)


def test_the_same_answer_for_every_input_is_ignores_input() -> None:
    found = _kinds(predictions=_json_predictions(lambda i: {"name": "Ada", "city": "Oslo"}))
    ignores = found["ignores_input"]
    assert ignores.severity == "error"
    assert ignores.evidence["most_common_answer_share"] == 1.0
    assert ignores.evidence["distinct_references"] == 6
    assert apply_patch(CONFIG, ignores.patch).training.epochs == 2


def test_one_json_field_stuck_on_one_value_is_ignores_input() -> None:
    predictions = _json_predictions(lambda i: {"name": NAMES[i], "city": "Oslo"})
    ignores = _kinds(predictions=predictions)["ignores_input"]
    assert ignores.evidence["constant_fields"]["city"]["share"] == 1.0
    assert "name" not in ignores.evidence["constant_fields"]


def _reviews(answer) -> list[dict[str, Any]]:
    """20 reviews, 17 of them positive; `answer(reference)` gives the model's dict."""
    labels = ["positive"] * 17 + ["negative", "neutral", "negative"]
    areas = ["battery", "screen", "price", "shipping", "sound", "camera", "size"]
    references = [{"sentiment": s, "area": areas[i % 7]} for i, s in enumerate(labels)]
    return [
        {"input": f"review {i}", "expected": json.dumps(r), "got": json.dumps(answer(r))}
        for i, r in enumerate(references)
    ]


def test_right_answers_on_imbalanced_labels_are_not_ignores_input() -> None:
    # The references themselves say "positive" 85% of the time: answering so is right.
    assert "ignores_input" not in _kinds(predictions=_reviews(lambda ref: ref))
    # Half the references are one text: so are half of the (right) answers.
    same = [{"input": f"q{i}", "expected": "no", "got": "no", "score": 1.0} for i in range(10)]
    varied = [
        {"input": f"w{i}", "expected": f"yes, {i}", "got": f"yes, {i}", "score": 1.0}
        for i in range(10)
    ]
    assert _kinds(predictions=same + varied) == {}


def test_a_label_stuck_on_the_majority_value_is_ignores_input() -> None:
    stuck = _kinds(predictions=_reviews(lambda ref: {**ref, "sentiment": "positive"}))
    field = stuck["ignores_input"].evidence["constant_fields"]["sentiment"]
    assert field["share"] == 1.0 and field["reference_share"] == 0.85


def test_right_keys_wrong_values_is_format_only() -> None:
    shifted = _json_predictions(lambda i: {"name": NAMES[i - 1], "city": CITIES[i - 2]})
    found = _kinds(predictions=shifted)
    assert set(found) == {"format_only"}  # answers vary with the row: not ignores_input
    evidence = found["format_only"].evidence
    assert evidence["keys_match"] == 6 and evidence["field_accuracy"] == 0.0
    assert evidence["field_accuracy_by_key"] == {"city": 0.0, "name": 0.0}


def test_right_answers_with_trailing_text_raise_nothing() -> None:
    right = _json_predictions(lambda i: {"name": NAMES[i], "city": CITIES[i]})
    for p in right:
        p["got"] += " and more"  # the JSON object is read up to its end
    assert _kinds(predictions=right) == {}


def test_plain_text_answers_that_differ_raise_nothing() -> None:
    predictions = [
        {"input": f"Where is {c}?", "expected": c, "got": c.lower(), "score": 1.0} for c in CITIES
    ]
    assert _kinds(predictions=predictions) == {}


def test_a_first_logged_loss_already_pushed_up_is_measured_from_the_base_models_loss() -> None:
    # lr 0.5 logged every 5 steps: the first point (20.9) already averages the climb from the
    # base model's loss, log(2264) = 7.7; measured from 20.9 alone the curve looks like a fall.
    history = _losses([20.94, 32.38, 15.61, 8.71])
    assert "lr_too_high" not in _kinds(log_history=history)
    base_loss = {"base": {"perplexity": 2264.0}, "tuned": {"perplexity": 147.0}}
    found = _kinds(log_history=history, evaluation=base_loss)
    too_high = found["lr_too_high"]
    assert too_high.severity == "error" and too_high.evidence["first_loss"] == 7.725
    assert "underfitting" not in found
