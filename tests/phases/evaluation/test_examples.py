"""The example rows a report and the gate show: worst, best, random, with both answers."""

from phases.evaluation import EvaluationResult, Prediction
from phases.evaluation.examples import MAX_CHARS, select_examples


def _result(scores: list[float], prefix: str) -> EvaluationResult:
    predictions = [
        Prediction(input=f"q{i}" * 200, expected=f"r{i}", got=f"{prefix}{i}", score=s)
        for i, s in enumerate(scores)
    ]
    return EvaluationResult(
        model=prefix, metrics={}, predictions=predictions, n_examples=len(scores), seconds=0.0
    )


def test_worst_best_and_seeded_random_rows_with_base_answers() -> None:
    scores = [0.5, 0.1, 0.9, 0.3, 0.7, 0.0, 1.0, 0.6, 0.4, 0.8]
    tuned, base = _result(scores, "tuned"), _result([0.0] * 10, "base")
    examples = select_examples(tuned, base)
    by_kind = {
        kind: [e.row for e in examples if e.which == kind] for kind in ("worst", "best", "random")
    }
    assert by_kind["worst"] == [5, 1] and by_kind["best"] == [6, 2]
    assert len(by_kind["random"]) == 2 and not set(by_kind["random"]) & {5, 1, 6, 2}
    assert select_examples(tuned, base) == examples  # seeded: the same rows every time
    for example in examples:
        assert example.tuned_output == f"tuned{example.row}"
        assert example.base_output == f"base{example.row}"
        assert example.score == scores[example.row]
        assert len(example.input) == MAX_CHARS and example.input.endswith("…")


def test_few_rows_are_shown_once_and_no_base_is_none() -> None:
    examples = select_examples(_result([0.2, 0.8, 0.5], "tuned"), None)
    assert [(e.which, e.row) for e in examples] == [("worst", 0), ("worst", 2), ("best", 1)]
    assert all(e.base_output is None for e in examples)
