"""Bad training input fails fast, before any model is loaded, with a message naming the problem."""

import json
from pathlib import Path

import pytest
from training_test_data import chat_rows, prompt_completion_rows, write_jsonl

from phases.training import (
    SFTTraining,
    TrainingInputError,
    estimate_training,
    parse_training_config,
    train,
)
from phases.training.checkpoints import latest_checkpoint


def _train(tmp_path: Path, method: str, data: Path):
    # A model path that does not exist: reaching the model loader would raise a different error.
    return train(
        parse_training_config({"method": method}),
        model=str(tmp_path / "no-such-model"),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )


def test_dpo_with_sft_data_names_file_kind_and_method(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "sft.jsonl", prompt_completion_rows(4))
    with pytest.raises(TrainingInputError) as error:
        _train(tmp_path, "dpo", data)
    message = str(error.value)
    assert str(data) in message and "'prompt_completion'" in message and "'dpo'" in message
    assert "preference" in message


def test_reward_without_pairs(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "chat.jsonl", chat_rows(4))
    with pytest.raises(TrainingInputError, match=r"'chat' data.*'reward'"):
        _train(tmp_path, "reward", data)


def test_sft_with_preference_data(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    with pytest.raises(TrainingInputError, match=r"'preference' data.*'sft'"):
        _train(tmp_path, "sft", data)


def test_empty_file(tmp_path: Path) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TrainingInputError, match="empty"):
        _train(tmp_path, "sft", data)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrainingInputError, match="not found"):
        _train(tmp_path, "sft", tmp_path / "nope.jsonl")


def test_bad_line_is_located(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"text": "ok"}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(TrainingInputError, match="line 2: not valid JSON"):
        _train(tmp_path, "sft", data)


def test_chat_must_end_with_assistant(tmp_path: Path) -> None:
    rows = chat_rows(2)
    rows[1]["messages"] = rows[1]["messages"][:-1]
    data = write_jsonl(tmp_path / "chat.jsonl", rows)
    with pytest.raises(TrainingInputError, match="row 2: the last message must be the assistant"):
        _train(tmp_path, "sft", data)


def test_mixed_kinds_rejected(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "mixed.jsonl", [{"text": "a"}, {"prompt": "p", "completion": "c"}]
    )
    with pytest.raises(TrainingInputError, match="line 2: a 'prompt_completion' row in a 'text'"):
        _train(tmp_path, "sft", data)


def test_half_written_checkpoint_is_ignored_and_removed(tmp_path: Path) -> None:
    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    broken = tmp_path / "checkpoint-6"  # weights written, killed before trainer_state.json
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) == good
    assert not broken.exists()


def test_estimate_training() -> None:
    config = SFTTraining(epochs=2, batch_size=4, gradient_accumulation_steps=2)
    estimate = estimate_training(config, num_examples=100, mean_tokens=50, num_parameters=10**6)
    assert estimate["steps_per_epoch"] == 13  # ceil(ceil(100 / 4) / 2)
    assert estimate["total_steps"] == 26
    assert estimate["tokens"] == 26 * 8 * 50
    assert estimate["memory_gb"] == pytest.approx(0.016)  # 16 bytes per parameter, full + AdamW
    assert estimate["seconds"] > 0
    measured = estimate_training(config, num_examples=100, mean_tokens=50, tokens_per_second=100)
    assert measured["seconds"] == pytest.approx(26 * 8 * 50 / 100)
    assert estimate["warnings"] == []


def test_bfloat16_on_a_cpu_without_its_instructions_is_warned_about(monkeypatch) -> None:
    from phases.training import hardware
    from phases.training.hardware import native_bf16

    assert native_bf16("flags : fpu sse avx2 avx512f avx512_bf16 fma")
    assert native_bf16("flags : fpu avx2 amx_bf16 amx_tile")
    assert not native_bf16("flags : fpu sse avx avx2 fma avx512f")
    assert not native_bf16("")
    wanted = SFTTraining(precision="bfloat16")
    monkeypatch.setattr(hardware, "native_bf16", lambda cpuinfo=None: False)
    (warning,) = estimate_training(wanted, num_examples=8, mean_tokens=10)["warnings"]
    assert "precision is bfloat16" in warning and "no bfloat16 instructions" in warning
    plain = estimate_training(SFTTraining(), num_examples=8, mean_tokens=10)
    assert (plain["warnings"], plain["precision"]) == ([], "float32")  # what auto picks here
    assert not estimate_training(wanted, num_examples=8, mean_tokens=10, device="cuda")["warnings"]
    monkeypatch.setattr(hardware, "native_bf16", lambda cpuinfo=None: True)
    assert estimate_training(wanted, num_examples=8, mean_tokens=10)["warnings"] == []
    plain = estimate_training(SFTTraining(), num_examples=8, mean_tokens=10)
    assert plain["precision"] == "bfloat16"
    kept = estimate_training(SFTTraining(precision="float32"), num_examples=8, mean_tokens=10)
    assert kept["precision"] == "float32"
