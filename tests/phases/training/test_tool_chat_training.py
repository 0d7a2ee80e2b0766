"""SFT on tool-calling conversations: the tool calls and the answers after tool results are
trained (the loss is on every assistant turn, nothing else), and the weights change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from models.tool_calls import format_tool_call
from phases.data import DataConfig, prepare_data
from phases.training import SFTTraining, train
from phases.training.callbacks import make_callbacks
from phases.training.data import TrainingInputError, load_training_data
from phases.training.trainers import build_sft, common_args

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "configs" / "data" / "calculator"))
from make_data import arithmetic_rows  # noqa: E402


@pytest.fixture
def tool_data(tmp_path: Path) -> Path:
    rows, _ = arithmetic_rows(12, seed=3)
    source = tmp_path / "calculator.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prepared = prepare_data(
        DataConfig(train=str(source), eval_fraction=0), output_dir=tmp_path / "data"
    )
    assert prepared.kind == "tool_chat"
    return tmp_path / "data" / "train.jsonl"


def test_only_assistant_turns_carry_the_loss(
    tool_data: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = SFTTraining(max_steps=1, batch_size=2)
    callbacks = make_callbacks(stop_at_fraction=None, progress=None, should_stop=None)
    trainer = build_sft(
        config,
        model=str(tiny_model_dir),
        train_data=load_training_data(tool_data, "sft"),
        eval_data=None,
        base_args=common_args(
            config, checkpoints_dir=tmp_path / "ck", max_length=512, has_eval=False
        ),
        work_dir=tmp_path / "work",
        callbacks=list(callbacks.values()),
        monitor=callbacks["monitor"],
        cache_dir=None,
    )
    rows = [json.loads(line) for line in tool_data.read_text().splitlines()]
    expected = set()
    for row in rows:
        call = row["messages"][1]["tool_calls"][0]["function"]
        answer = row["messages"][3]["content"]
        expected.add(f"{format_tool_call(call['name'], call['arguments'])}</s>\n{answer}</s>\n")
    decode = trainer.processing_class.decode
    trained = {decode([t for t in ex["labels"] if t != -100]) for ex in trainer.train_dataset}
    assert trained == expected


def test_sft_on_tool_calls_changes_the_weights(
    tool_data: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    result = train(
        SFTTraining(max_steps=3, batch_size=4, learning_rate=1e-3),
        model=str(tiny_model_dir),
        train_path=tool_data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(Path(result.model_path) / "model.safetensors"))
    assert sum(not torch.equal(before[k], after[k]) for k in before) >= len(before) // 2


def test_a_tool_row_with_an_unknown_role_is_refused(tmp_path: Path) -> None:
    row = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "function", "content": "x"}],
        "tools": [],
    }
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(TrainingInputError, match=r"row 1: messages\[1\] has role 'function'"):
        load_training_data(path, "sft")
    with pytest.raises(TrainingInputError, match="method 'dpo' cannot use"):
        load_training_data(_valid(tmp_path), "dpo")


def _valid(tmp_path: Path) -> Path:
    rows, _ = arithmetic_rows(1, seed=1)
    path = tmp_path / "valid.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    return path
