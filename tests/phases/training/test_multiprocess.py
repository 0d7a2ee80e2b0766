"""Data-parallel training in two processes through `accelerate launch` (gloo on the CPU).

Two processes with 4 examples each per step take the same optimizer steps over the same data as
one process with 8 (accelerate hands the two halves of each batch to the two processes), so
they reach the same loss at every step, up to the order of floating-point sums; a pause at 50%
and a cancel behave as in one process, across both processes.
"""

import json
from pathlib import Path

import pytest
from training_test_data import prompt_completion_rows, write_jsonl

from phases.training import SFTTraining, train

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
    paused = train(
        two_config,
        model=str(tiny_model_dir),
        train_path=data,
        eval_path=None,
        output_dir=tmp_path / "two",
        stop_at_fraction=0.5,
        progress=lambda p: steps.append(p.step),
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
        progress=lambda p: steps.append(p.step),
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
