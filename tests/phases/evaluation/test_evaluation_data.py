"""Eval data checks: references per kind, and errors raised before any model is loaded."""

import pytest

from phases.evaluation import EvaluationConfig, EvaluationInputError, evaluate_model
from phases.evaluation.eval_data import load_eval_examples

NO_SUCH_MODEL = "/nonexistent/model/dir"  # loading it would fail with a different error


def test_no_references_error_comes_before_model_load(jsonl_file) -> None:
    eval_path = jsonl_file([{"text": "just a document"}])
    config = EvaluationConfig(metrics=["rougeL", "perplexity"])
    with pytest.raises(EvaluationInputError, match="no references") as error:
        evaluate_model(config, model=NO_SUCH_MODEL, eval_path=eval_path)
    assert "rougeL" in str(error.value) and str(eval_path) in str(error.value)


def test_plain_text_is_accepted_for_perplexity_only(jsonl_file) -> None:
    eval_path = jsonl_file([{"text": "a"}, {"text": "b"}])
    examples = load_eval_examples(eval_path)
    assert [e.reference for e in examples] == [None, None]
    assert [e.text for e in examples] == ["a", "b"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "hi"}, "record of kind 'prompt' in a file of kind 'prompt_completion'"),
        ({"prompt": "hi", "completion": "  "}, "'completion' is empty"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "last message must be"),
        ({"question": "hi"}, "unrecognized record"),
    ],
)
def test_bad_records_name_file_and_line(jsonl_file, record: dict, message: str) -> None:
    eval_path = jsonl_file([{"prompt": "a", "completion": "b"}, record])
    with pytest.raises(EvaluationInputError, match=message) as error:
        evaluate_model(EvaluationConfig(), model=NO_SUCH_MODEL, eval_path=eval_path)
    assert f"{eval_path}:2" in str(error.value)


def test_preference_uses_chosen_as_reference(jsonl_file) -> None:
    record = {"prompt": "Say hi", "chosen": "hi", "rejected": "no"}
    example = load_eval_examples(jsonl_file([record]))[0]
    assert (example.prompt, example.reference) == ("Say hi", "hi")


def test_thresholds_must_name_requested_metrics() -> None:
    with pytest.raises(ValueError, match="not in evaluation.metrics"):
        EvaluationConfig(metrics=["bleu"], thresholds={"rougeL": 0.5})
