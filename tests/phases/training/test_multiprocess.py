"""Data-parallel training in two processes through `accelerate launch` (gloo on the CPU).

Two processes with 4 examples each per step take the same optimizer steps over the same data as
one process with 8 (accelerate hands the two halves of each batch to the two processes), so
they reach the same loss at every step, up to the order of floating-point sums, and the live
progress reports that loss; a pause at 50% and a cancel behave as in one process, across both
processes. GRPO's reward numbers, samples and guards cover the whole generation batch, and a
process that fails is named with its own error.
"""

import json
from pathlib import Path

import pytest
from training_test_data import prompt_completion_rows, write_jsonl

from phases.training import SFTTraining, parse_training_config, train
from phases.training.data import TrainingInputError
from phases.training.multiprocess import TrainingProcessError
from phases.training.reward_watch import COMPLETIONS_FILE, SAMPLES_PER_LOG

pytestmark = pytest.mark.slow

SETTINGS = {"max_steps": 16, "learning_rate": 2e-3, "logging_steps": 1, "save_steps": 50}


def _losses(history_path: str) -> dict[int, float]:
    history = json.loads(Path(history_path).read_text())
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def _tail_mean(losses: dict[int, float], steps: int = 4) -> float:
    last = sorted(losses)[-steps:]
    return sum(losses[s] for s in last) / steps


def test_two_processes_reach_the_loss_of_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(64))
    one = train(
        SFTTraining(batch_size=8, **SETTINGS),
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "one",
    )
    two_config = SFTTraining(batch_size=4, num_processes=2, **SETTINGS)
    steps: list[int] = []
    live: dict[int, float] = {}
    paused = train(
        two_config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "two",
        stop_at_fraction=0.5,
        progress=lambda p: (steps.append(p.step), live.__setitem__(p.step, p.loss)),
    )
    assert paused.status == "paused" and paused.global_step == 8 == paused.total_steps // 2
    assert Path(paused.checkpoint_path).name == "checkpoint-8"
    # Both processes saved their random state in the one checkpoint the first one wrote.
    assert {p.name for p in Path(paused.checkpoint_path).glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }
    two = train(
        two_config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "two",
        progress=lambda p: (steps.append(p.step), live.__setitem__(p.step, p.loss)),
    )
    assert two.status == "completed" and two.resumed_from_step == 8
    assert one.total_steps == two.total_steps == 16
    assert steps == list(range(1, 17))  # every step reported once, across the two calls
    assert Path(two.model_path, "model.safetensors").is_file()

    single, double = _losses(one.log_history_path), _losses(two.log_history_path)
    first = single[1]
    assert sorted(double) == list(range(1, 17))
    assert _tail_mean(single) < 0.5 * first and _tail_mean(double) < 0.5 * first  # both learned
    assert double == pytest.approx(single, rel=0.02)  # step by step: measured equal to 1e-3
    # The progress shows the whole batch's loss, not the first process's half of it.
    assert live == pytest.approx(double, rel=1e-4)


def test_a_cancel_stops_every_process_at_the_same_step(tiny_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(64))
    seen: list[int] = []
    result = train(
        SFTTraining(batch_size=4, num_processes=2, **{**SETTINGS, "max_steps": 400}),
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "out",
        progress=lambda p: seen.append(p.step),
        should_stop=lambda: len(seen) >= 3,
    )
    assert result.status == "cancelled" and 3 <= result.global_step < 400
    assert Path(result.checkpoint_path).name == f"checkpoint-{result.global_step}"
    assert result.model_path is None


def _grpo(tmp_path: Path, monkeypatch, model_dir: Path, reward: str, progress=None, **overrides):
    """Train GRPO on the tiny model in two processes of 4 completions each (one group of 4 per
    process per step), the reward taken from the tests' `sample_rewards` module."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the processes import it
    prompts = [{"prompt": f"Question {i}: say yes."} for i in range(8)]
    config = {
        "method": "grpo",
        "rewards": [{"function": f"sample_rewards:{reward}"}],
        "max_steps": 6,
        "batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 4,
        "lora": None,
        "logging_steps": 1,
        "log_completions_steps": 1,
        "num_processes": 2,
        **overrides,
    }
    return train(
        parse_training_config(config),
        model=str(model_dir),
        train_path=write_jsonl(tmp_path / "prompts.jsonl", prompts),
        eval_path=None,
        output_dir=tmp_path / "out",
        reward_modules=["sample_rewards"],
        progress=progress,
    )


def test_grpo_in_two_processes_judges_the_whole_batch(tiny_model_dir, tmp_path, monkeypatch):
    # Each prompt's completions score alike: every group has zero spread, in both processes.
    guards = {"action": "stop", "zero_spread_steps": 2, "clipped_steps": 50}
    reports = []
    result = _grpo(
        tmp_path,
        monkeypatch,
        tiny_model_dir,
        "same_for_every_completion",
        progress=reports.append,
        guards=guards,
    )
    # Both processes stopped at the guard's step, together (one alone would leave the other
    # waiting in its next all-reduce: a crash).
    assert (result.status, result.global_step, result.reward_guard["step"]) == ("completed", 2, 2)
    assert Path(result.model_path).is_dir()
    # The numbers are the two processes' 8 completions (2 groups), as TRL's own log has them.
    history = [e for e in json.loads(Path(result.log_history_path).read_text()) if "reward" in e]
    assert [p.rewards["reward"] for p in reports] == pytest.approx([e["reward"] for e in history])
    assert [p.rewards["zero_spread"] for p in reports] == [1.0, 1.0]
    # One writer: the samples of each step once, the path the result names.
    out = tmp_path / "out"
    samples = [json.loads(line) for line in (out / COMPLETIONS_FILE).read_text().splitlines()]
    assert [s["step"] for s in samples] == [1] * SAMPLES_PER_LOG + [2] * SAMPLES_PER_LOG
    assert result.completions_path == str(out / COMPLETIONS_FILE)


def test_a_reward_that_fails_in_one_process_is_named_as_bad_input(
    tiny_model_dir, tmp_path, monkeypatch
):
    with pytest.raises(TrainingInputError) as failure:
        _grpo(tmp_path, monkeypatch, tiny_model_dir, "fails_in_the_second_process")
    # Process 1's own error, not the broken connection its failure left in process 0.
    message = str(failure.value)
    assert message.startswith("training.rewards[0].function 'sample_rewards:fails_in_the_second")
    assert "KeyError: 'only process 1 fails'" in message and "gloo" not in message


def test_a_killed_process_is_named_with_the_signal(tiny_model_dir, tmp_path, monkeypatch):
    with pytest.raises(TrainingProcessError) as failure:
        _grpo(tmp_path, monkeypatch, tiny_model_dir, "killed_in_the_second_process")
    log = tmp_path / "out" / "launch" / "processes.log"
    assert str(failure.value) == (
        "training process 1 of 2 was ended by signal 9 (SIGKILL) (also how the kernel ends a "
        f"process when memory runs out) (full log: {log})"
    )
