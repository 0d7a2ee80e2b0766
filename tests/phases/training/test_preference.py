"""DPO widens the chosen-minus-rejected margin; a reward model learns to rank chosen first."""

from pathlib import Path

import torch
from training_test_data import preference_rows, write_jsonl

from phases.training import LoraSettings, TrainingConfig, score, train


def _completion_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """Sum of log p(completion tokens | prompt), as DPO scores a completion."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1], dim=-1)
    targets = ids[0, 1:]
    token_logprobs = logprobs.gather(1, targets[:, None])[:, 0]
    return float(token_logprobs[len(prompt_ids) - 1 :].sum())


def _mean_margin(model_dir: Path, rows: list[dict]) -> float:
    from models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir), for_generation=True)
    margins = [
        _completion_logprob(model, tokenizer, row["prompt"], row["chosen"])
        - _completion_logprob(model, tokenizer, row["prompt"], row["rejected"])
        for row in rows
    ]
    return sum(margins) / len(margins)


def test_dpo_widens_chosen_rejected_margin(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(16)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = TrainingConfig(method="dpo", max_steps=4, batch_size=8, learning_rate=1e-3, beta=0.1)
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    before = _mean_margin(tiny_model_dir, rows)
    after = _mean_margin(Path(result.model_path), rows)
    assert after > before + 5.0, (before, after)


def test_dpo_with_lora_uses_the_base_as_reference(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(8)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = TrainingConfig(
        method="dpo", max_steps=4, batch_size=8, learning_rate=5e-3, lora=LoraSettings(r=4)
    )
    result = train(
        config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    assert (Path(result.model_path) / "adapter_config.json").is_file()
    assert _mean_margin(Path(result.model_path), rows) > _mean_margin(tiny_model_dir, rows)


def test_reward_model_ranks_chosen_above_rejected(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(16)
    data = write_jsonl(tmp_path / "pref.jsonl", rows)
    config = TrainingConfig(method="reward", max_steps=12, batch_size=8, learning_rate=1e-3)
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
