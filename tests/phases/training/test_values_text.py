"""Values stay text end to end: a CSV and a JSONL whose prompts and completions look like dates,
numbers and booleans go through the data phase, training and evaluation with their exact text.

Before the fix, a CSV whose completions were all ISO dates passed the data phase and then
crashed training (`load_dataset("json")` read them back as timestamps).
"""

import json
from pathlib import Path

import pytest

from phases.data import DataConfig, prepare_data
from phases.evaluation import EvaluationConfig, evaluate_model
from phases.training import SFTTraining, train

# Every completion is a date or a date-time: a type-inferring reader makes the column timestamps.
CSV_COMPLETIONS = ["2024-01-05", "2023-12-31T23:59:59", "2024-02-29 08:30", "1999-01-01"]
# JSON numbers and booleans (written raw) and strings that look like numbers, booleans or null.
JSONL_COMPLETIONS = {
    "1.50": "1.50",
    "1e3": "1e3",
    "true": "true",
    "false": "false",
    '"007"': "007",
    '"null"': "null",
    '"True"': "True",
    '"-0.0"': "-0.0",
}


def _csv(directory: Path) -> tuple[Path, list[str]]:
    path = directory / "orders.csv"
    completions = CSV_COMPLETIONS * 3
    lines = ["prompt,completion"] + [f"Order 00{i}?,{c}" for i, c in enumerate(completions)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, completions


def _jsonl(directory: Path) -> tuple[Path, list[str]]:
    path = directory / "answers.jsonl"
    # Prompts are all ISO dates too; raw JSON literals cannot be written with json.dumps.
    written = list(JSONL_COMPLETIONS) * 2
    lines = [
        f'{{"prompt": "2024-03-{i + 1:02d}", "completion": {c}}}' for i, c in enumerate(written)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [JSONL_COMPLETIONS[c] for c in written]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("write", [_csv, _jsonl], ids=["csv", "jsonl"])
def test_lookalike_values_keep_their_text_through_training_and_evaluation(
    write, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from datasets import load_from_disk

    source, completions = write(tmp_path)
    out = tmp_path / "data"
    prepare_data(DataConfig(train=str(source), eval_fraction=0.25), output_dir=out)
    train_rows, eval_rows = _rows(out / "train.jsonl"), _rows(out / "eval.jsonl")
    prepared = train_rows + eval_rows
    assert sorted(r["completion"] for r in prepared) == sorted(completions)
    assert all(type(r["prompt"]) is str and type(r["completion"]) is str for r in prepared)

    run = tmp_path / "run"
    result = train(
        SFTTraining(max_steps=2, batch_size=4, learning_rate=1e-3),
        model=str(tiny_model_dir),
        train_path=out / "train.jsonl",
        eval_path=out / "eval.jsonl",
        output_dir=run,
        max_length=64,
    )
    assert result.status == "completed" and result.global_step == 2
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        seen = load_from_disk(str(run / "datasets-cache" / split))  # the trainer's dataset
        assert seen["prompt"] == [r["prompt"] for r in rows]
        assert seen["completion"] == [r["completion"] for r in rows]

    evaluation = evaluate_model(
        EvaluationConfig(metrics=["exact_match"], max_new_tokens=4),
        model=result.model_path,
        eval_path=out / "eval.jsonl",
    )
    assert [p.expected for p in evaluation.predictions] == [r["completion"] for r in eval_rows]
    assert [p.input for p in evaluation.predictions] == [r["prompt"] for r in eval_rows]
