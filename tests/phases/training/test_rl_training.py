"""GRPO and RLOO raise a reward on the tiny model and change its weights; KTO widens the gap
between thumbs-up and thumbs-down replies; a reward with no spread stops the run, named."""

import json
from pathlib import Path

import pytest
import torch
from training_test_data import NAMES, completion_logprob, write_jsonl

from phases.training import parse_training_config, train
from phases.training.reward_watch import COMPLETIONS_FILE, GUARD_FILE

# A reward for the fixed string sample_rewards.TARGET (a dense one: difflib's similarity).
TARGET_REWARD = {"function": "sample_rewards:close_to_target"}


def _prompts(tmp_path: Path) -> Path:
    rows = [{"prompt": f"Question {i}: say yes."} for i in range(8)]
    return write_jsonl(tmp_path / "prompts.jsonl", rows)


def _rl(method: str, **overrides) -> dict:
    return {
        "method": method,
        "rewards": [TARGET_REWARD],
        "max_steps": 16,
        "batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 6,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "lora": None,
        "guards": {"action": "flag"},
        **overrides,
    }


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def _run(config: dict, model_dir: Path, data: Path, out: Path, progress=None):
    return train(
        parse_training_config(config),
        model=str(model_dir),
        train_path=data,
        eval_path=None,
        output_dir=out,
        reward_modules=["sample_rewards"],
        progress=progress,
    )


def _first_and_last_fifth(rewards: list[float]) -> tuple[float, float]:
    fifth = max(1, len(rewards) // 5)
    return sum(rewards[:fifth]) / fifth, sum(rewards[-fifth:]) / fifth


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "overrides"),
    [
        ("grpo", {}),
        # RLOO's sequence-level loss moves slower: measured flat at 1e-2 over 16 steps.
        ("rloo", {"learning_rate": 3e-2, "beta": 0.0}),
    ],
)
def test_rl_raises_the_reward_for_a_target_string(method, overrides, tiny_model_dir, tmp_path):
    reports = []
    config = _rl(method, **overrides)
    result = _run(config, tiny_model_dir, _prompts(tmp_path), tmp_path / "out", reports.append)
    assert result.status == "completed" and result.global_step == 16
    rewards = [p.rewards["reward"] for p in reports]
    first, last = _first_and_last_fifth(rewards)
    assert last > first, rewards
    # The trainer's own log agrees with ours (TRL logs the mean reward as `reward`).
    history = json.loads(Path(result.log_history_path).read_text())
    logged = [e["reward"] for e in history if "reward" in e]
    assert logged == pytest.approx(rewards, abs=1e-3)
    before, after = _weights(tiny_model_dir), _weights(Path(result.model_path))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    # Samples with each function's reward, every log_completions_steps, in the run's folder.
    samples = [json.loads(line) for line in Path(result.completions_path).read_text().splitlines()]
    assert {s["step"] for s in samples} == {1, 5, 10, 15}
    assert set(samples[0]["rewards"]) == {"sample_rewards.close_to_target"}
    assert reports[4].samples[0]["completion"] == samples[4]["completion"]


def test_zero_reward_spread_stops_the_run_naming_why(tiny_model_dir, tmp_path) -> None:
    never = {"function": "regex", "pattern": "^no completion says this$"}
    config = _rl(
        "grpo",
        rewards=[never],
        max_steps=20,
        max_completion_length=4,
        guards={"zero_spread_steps": 2, "clipped_steps": 50},
    )
    # What an earlier attempt that failed before its first checkpoint left in the folder: a
    # fresh start must neither take over its fired guard nor append to its samples.
    out = tmp_path / "out"
    out.mkdir()
    stale = {"kind": "completions_clipped", "step": 7, "action": "stop", "message": "old"}
    (out / GUARD_FILE).write_text(json.dumps(stale))
    (out / COMPLETIONS_FILE).write_text('{"step": 7}\n')
    result = _run(config, tiny_model_dir, _prompts(tmp_path), out)
    assert result.reward_guard["kind"] == "zero_reward_spread"
    assert (result.global_step, result.reward_guard["step"]) == (2, 2)
    assert result.status == "completed" and Path(result.model_path).is_dir()
    assert "no spread within 100% of the prompt groups for 2 steps" in result.message
    samples = [json.loads(line) for line in (out / COMPLETIONS_FILE).read_text().splitlines()]
    assert {s["step"] for s in samples} == {1}


def _kto_rows() -> list[dict]:
    rows = []
    for i in range(8):
        prompt = f"{NAMES[i]} is {20 + i} years old. JSON:"
        rows.append({"prompt": prompt, "completion": f' {{"name": "{NAMES[i]}"}}', "label": True})
        rows.append({"prompt": prompt, "completion": " I do not know that", "label": False})
    return rows


def _kto_margin(model_dir: Path, rows: list[dict]) -> float:
    from models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir), for_generation=True)
    signed = [
        (1 if r["label"] else -1)
        * completion_logprob(model, tokenizer, r["prompt"], r["completion"])
        for r in rows
    ]
    return sum(signed) / len(signed)


def test_kto_widens_the_thumbs_up_thumbs_down_margin(tiny_model_dir, tmp_path) -> None:
    rows = _kto_rows()
    data = write_jsonl(tmp_path / "thumbs.jsonl", rows)
    config = {"method": "kto", "max_steps": 4, "batch_size": 8, "learning_rate": 1e-3}
    result = train(
        parse_training_config(config),
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
    )
    assert result.status == "completed"
    before = _kto_margin(tiny_model_dir, rows)
    after = _kto_margin(Path(result.model_path), rows)
    assert after > before + 2.0, (before, after)


@pytest.mark.slow
def test_grpo_pauses_at_a_fraction_and_resumes_with_lora(tiny_model_dir, tmp_path) -> None:
    # Every 4-token completion hits the cap: the clipping guard flags the first segment.
    flag_clipping = {"action": "flag", "clipped_steps": 1, "zero_spread_steps": 50}
    config = _rl("grpo", max_steps=4, max_completion_length=4, lora={"r": 4}, guards=flag_clipping)
    data, out = _prompts(tmp_path), tmp_path / "out"
    first = train(
        parse_training_config(config),
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=out,
        reward_modules=["sample_rewards"],
        stop_at_fraction=0.5,
    )
    assert (first.status, first.global_step, first.total_steps) == ("paused", 2, 4)
    assert (first.reward_guard["kind"], first.reward_guard["step"]) == ("completions_clipped", 1)
    second = _run(config, tiny_model_dir, data, out)
    assert (second.status, second.global_step, second.resumed_from_step) == ("completed", 4, 2)
    assert second.reward_guard == first.reward_guard  # a flag outlives the pause
    assert (Path(second.model_path) / "adapter_config.json").is_file()
    history = json.loads(Path(second.log_history_path).read_text())
    assert [e["step"] for e in history if "reward" in e] == [1, 2, 3, 4]
