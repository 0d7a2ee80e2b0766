"""DPO widens the chosen-minus-rejected margin; a reward model learns to rank chosen first."""

from pathlib import Path

from training_test_data import mean_margin, preference_rows, write_jsonl

from phases.training import DPOTraining, LoraSettings, RewardTraining, score, train


def test_dpo_widens_chosen_rejected_margin(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(16)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = DPOTraining(max_steps=4, batch_size=8, learning_rate=1e-3, beta=0.1)
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    before = mean_margin(tiny_model_dir, rows)
    after = mean_margin(Path(result.model_path), rows)
    assert after > before + 5.0, (before, after)


def test_dpo_with_lora_uses_the_base_as_reference(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(8)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = DPOTraining(max_steps=4, batch_size=8, learning_rate=5e-3, lora=LoraSettings(r=4))
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    assert (Path(result.model_path) / "adapter_config.json").is_file()
    assert mean_margin(Path(result.model_path), rows) > mean_margin(tiny_model_dir, rows)


def test_reward_model_ranks_chosen_above_rejected(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(16)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = RewardTraining(max_steps=12, batch_size=8, learning_rate=1e-3)
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    model_dir = Path(result.model_path)
    wins = sum(
        score(model_dir, row["prompt"], row["chosen"])
        > score(model_dir, row["prompt"], row["rejected"])
        for row in rows
    )
    assert wins / len(rows) >= 0.8
