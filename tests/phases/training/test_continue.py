"""Continuing a finished run from its final checkpoint to a longer schedule (`continue_from`)."""

import json
from pathlib import Path

import pytest
from training_test_data import prompt_completion_rows, write_jsonl

from phases.training import LoraSettings, SFTTraining, TrainingInputError, train

# 24 examples / batch 8 = 3 steps per epoch: 2 epochs = 6 steps, 4 epochs = 12.
CONFIG = SFTTraining(
    epochs=2, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1, save_steps=50
)
LONGER = CONFIG.model_copy(update={"epochs": 4})


def _run(model_dir: Path, data: Path, out: Path, config: SFTTraining, **kwargs):
    return train(
        config, model=str(model_dir), train_path=data, eval_path=None, output_dir=out, **kwargs
    )


def _history(path: str) -> dict[int, dict]:
    entries = json.loads(Path(path).read_text())
    return {e["step"]: e for e in entries if "loss" in e}


def test_continue_trains_on_from_the_checkpoint_to_the_longer_total(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(24))
    first = _run(tiny_model_dir, data, tmp_path / "first", CONFIG)
    assert first.status == "completed" and first.global_step == first.total_steps == 6
    assert Path(first.checkpoint_path).name == "checkpoint-6"  # the last step leaves one

    more = _run(
        tiny_model_dir, data, tmp_path / "more", LONGER, continue_from=Path(first.checkpoint_path)
    )
    assert more.status == "completed" and more.continued_from == first.checkpoint_path
    assert more.resumed_from_step == 6 and more.global_step == more.total_steps == 12
    assert Path(more.checkpoint_path).parent == tmp_path / "more" / "checkpoints"
    assert Path(more.model_path).is_dir()

    before, after = _history(first.log_history_path), _history(more.log_history_path)
    assert sorted(after) == list(range(1, 13))
    assert {s: after[s]["loss"] for s in before} == {s: e["loss"] for s, e in before.items()}
    # Step 7 starts from iteration 1's weights: its loss is near step 6's, far below step 1's
    # (the base model's), and training keeps lowering it.
    assert abs(after[7]["loss"] - before[6]["loss"]) < 0.3 * (before[1]["loss"] - before[6]["loss"])
    assert after[12]["loss"] < before[6]["loss"]
    # The rest follows the 12-step schedule: linear decay from step 6 of 12 (half the peak),
    # not the 6-step run's end (zero).
    assert after[7]["learning_rate"] == pytest.approx(1e-3 * 6 / 12)
    assert after[12]["learning_rate"] == pytest.approx(1e-3 * 1 / 12)
    args = json.loads((tmp_path / "more" / "training_args.json").read_text())
    assert args["finetune_agent"]["continued_from"] == first.checkpoint_path

    # A second call into the same directory (a crash, then resume) resumes its own checkpoint,
    # not the earlier one, and still records where the segment continued from (it said None,
    # which lost the iteration's origin from the run's record and model card).
    again = _run(
        tiny_model_dir, data, tmp_path / "more", LONGER, continue_from=Path(first.checkpoint_path)
    )
    assert again.resumed_from_step == 12 and again.continued_from == first.checkpoint_path
    args = json.loads((tmp_path / "more" / "training_args.json").read_text())
    assert args["finetune_agent"]["continued_from"] == first.checkpoint_path


def test_continue_refuses_a_checkpoint_with_nothing_left_or_unusable(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(24))
    first = _run(tiny_model_dir, data, tmp_path / "first", CONFIG)
    checkpoint = Path(first.checkpoint_path)
    with pytest.raises(TrainingInputError, match="at step 6, but this configuration trains 6"):
        _run(tiny_model_dir, data, tmp_path / "same", CONFIG, continue_from=checkpoint)
    shorter = CONFIG.model_copy(update={"epochs": 1})
    with pytest.raises(TrainingInputError, match="nothing is left to train"):
        _run(tiny_model_dir, data, tmp_path / "short", shorter, continue_from=checkpoint)
    with pytest.raises(TrainingInputError, match="not a complete Trainer checkpoint"):
        _run(tiny_model_dir, data, tmp_path / "bad", LONGER, continue_from=tmp_path / "first")
    other_data = write_jsonl(tmp_path / "other.jsonl", prompt_completion_rows(16))
    with pytest.raises(TrainingInputError, match="number of examples"):
        _run(tiny_model_dir, other_data, tmp_path / "other", LONGER, continue_from=checkpoint)
    lora = LONGER.model_copy(update={"lora": LoraSettings(r=4, alpha=8)})
    with pytest.raises(TrainingInputError, match="training.lora"):
        _run(tiny_model_dir, data, tmp_path / "lora", lora, continue_from=checkpoint)
