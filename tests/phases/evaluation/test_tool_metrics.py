"""Tool use scored on held-out turns: the share of parseable calls and of exact calls (tool
name and arguments), in whatever format the model's template writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phases.evaluation import EvaluationConfig, evaluate_model
from phases.evaluation.errors import EvaluationInputError
from phases.evaluation.eval_data import load_eval_examples
from phases.evaluation.tool_metrics import reference_text, row_tool_scores, tool_metric_value

CALL = {
    "type": "function",
    "function": {"name": "calculator", "arguments": {"expression": "12 * 7", "digits": 2}},
}
REFERENCE = reference_text({"role": "assistant", "content": "", "tool_calls": [CALL]})


@pytest.mark.parametrize(
    ("answer", "scores"),
    [
        (
            '<tool_call>{"name": "calculator", "arguments": {"digits": 2, "expression": "12 * 7"}}</tool_call>',
            (1, 1, 1),
        ),
        (
            '[TOOL_CALLS] [{"name": "calculator", "arguments": {"expression": "12 * 7", "digits": 2}}]',
            (1, 1, 1),
        ),
        (
            '<tool_call>{"name": "calculator", "arguments": {"expression": "12*7", "digits": 2}}</tool_call>',
            (1, 0, 1),
        ),
        (
            '<tool_call>{"name": "calculator", "arguments": {"expression": "12 * 7", "digits": "2"}}</tool_call>',
            (1, 0, 1),
        ),
        (
            '<tool_call>{"name": "python", "arguments": {"code": "print(12*7)"}}</tool_call>',
            (1, 0, 0),
        ),
        ('<tool_call>{"name": "calculator", "arguments": {"expression": </tool_call>', (0, 0, 0)),
        ("It is 84.", (0, 0, 0)),
    ],
)
def test_each_answer_is_scored_on_name_and_arguments(answer: str, scores: tuple) -> None:
    got = row_tool_scores(answer, REFERENCE)
    assert (got["tool_call_parseable"], got["tool_call_exact"], got["tool_name_accuracy"]) == scores


def test_turns_without_a_call_are_left_out_of_the_share() -> None:
    predictions = [REFERENCE, "nonsense", "The answer is 84."]
    references = [REFERENCE, REFERENCE, "The answer is 84."]
    assert tool_metric_value("tool_call_exact", predictions, references) == 0.5
    assert row_tool_scores("anything", "The answer is 84.") == {}


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_held_out_conversation_gives_one_example_per_assistant_turn(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "What is 12 times 7?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "name": "calculator", "content": "84"},
            {"role": "assistant", "content": "It is 84."},
        ],
        "tools": [{"type": "function", "function": {"name": "calculator", "parameters": {}}}],
    }
    examples = load_eval_examples(_write(tmp_path / "eval.jsonl", [row]))
    assert [(e.kind, len(e.prompt), e.reference) for e in examples] == [
        ("tool_chat", 1, REFERENCE),
        ("tool_chat", 3, "It is 84."),
    ]


def test_the_evaluator_adds_the_tool_metrics_and_scores_a_model(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "configs" / "data" / "calculator"))
    from make_data import arithmetic_rows

    rows, _ = arithmetic_rows(3, seed=2)
    path = _write(tmp_path / "eval.jsonl", rows)
    result = evaluate_model(
        EvaluationConfig(metrics=["exact_match"], max_new_tokens=8),
        model=str(tiny_model_dir),
        eval_path=path,
    )
    assert list(result.metrics) == [
        "exact_match",
        "tool_call_parseable",
        "tool_call_exact",
        "tool_name_accuracy",
    ]
    assert result.n_examples == 6  # each conversation: the call, then the answer
    assert result.metrics["tool_call_exact"] == 0.0  # a random model calls nothing
    assert set(result.predictions[0].scores) >= {"tool_call_exact", "tool_call_parseable"}


def test_tool_metrics_on_data_without_calls_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "eval.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    with pytest.raises(EvaluationInputError, match="no eval turn calls a tool"):
        evaluate_model(
            EvaluationConfig(metrics=["tool_call_exact"]), model="unused", eval_path=path
        )
