"""Segments, cancellation, crash recovery and divergence: a run always ends in a known state."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_test_data import prompt_completion_rows, write_jsonl

from phases.training import SFTTraining, TrainingInputError, train
from phases.training.checkpoints import damaged_files, is_valid_checkpoint

CONFIG = SFTTraining(
    max_steps=6, batch_size=4, learning_rate=1e-3, warmup_ratio=0.2, logging_steps=1, save_steps=50
)


def _run(model_dir: Path, data: Path, out: Path, config: SFTTraining = CONFIG, **kwargs):
    return train(
        config, model=str(model_dir), train_path=data, eval_path=None, output_dir=out, **kwargs
    )


def _per_step(history_path: str, key: str) -> dict[int, float]:
    history = json.loads(Path(history_path).read_text())
    return {entry["step"]: entry[key] for entry in history if key in entry}


def test_pause_at_half_then_resume_matches_uninterrupted(tiny_model_dir: Path, tmp_path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(24))
    whole = _run(tiny_model_dir, data, tmp_path / "whole")

    first = _run(tiny_model_dir, data, tmp_path / "split", stop_at_fraction=0.5)
    assert first.status == "paused" and first.global_step == 3 and first.total_steps == 6
    assert first.model_path is None and Path(first.checkpoint_path).name == "checkpoint-3"
    assert Path(first.log_history_path).is_file()
    again = _run(tiny_model_dir, data, tmp_path / "split", stop_at_fraction=0.5)
    assert again.status == "paused" and again.global_step == 3  # the same pause trains nothing

    rest = _run(tiny_model_dir, data, tmp_path / "split")
    assert rest.status == "completed" and rest.resumed_from_step == 3
    assert rest.global_step == whole.global_step == 6
    assert _per_step(rest.log_history_path, "learning_rate") == pytest.approx(
        _per_step(whole.log_history_path, "learning_rate")
    )
    assert rest.train_loss == pytest.approx(whole.train_loss, rel=1e-3)


def test_cancel_saves_a_checkpoint_and_a_later_call_finishes(tiny_model_dir: Path, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(8))
    steps: list[int] = []
    cancelled = _run(
        tiny_model_dir,
        data,
        tmp_path / "out",
        progress=lambda p: steps.append(p.step),
        should_stop=lambda: len(steps) >= 2,
    )
    assert cancelled.status == "cancelled" and cancelled.global_step == 2
    assert cancelled.model_path is None and cancelled.checkpoint_path.endswith("checkpoint-2")
    longer = CONFIG.model_copy(update={"max_steps": 8})
    with pytest.raises(TrainingInputError, match="belongs to a run of 6 steps"):
        _run(tiny_model_dir, data, tmp_path / "out", config=longer)
    finished = _run(tiny_model_dir, data, tmp_path / "out")
    assert finished.status == "completed" and finished.resumed_from_step == 2
    assert finished.global_step == 6


def test_nan_loss_stops_as_diverged_without_saving(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(16))
    # Large enough that the updated weights overflow float32 activations into inf, then NaN.
    update = {"learning_rate": 1e30, "warmup_ratio": 0.0, "max_steps": 10, "save_steps": 1}
    config = CONFIG.model_copy(update=update)
    result = _run(tiny_model_dir, data, tmp_path / "out", config=config)
    assert result.status == "diverged"
    assert result.diverged_at_step is not None and result.diverged_at_step < 10
    assert result.global_step == result.diverged_at_step
    assert result.model_path is None and not (tmp_path / "out" / "model").exists()
    assert "No model was saved" in result.message
    saved = sorted(p.name for p in (tmp_path / "out" / "checkpoints").glob("checkpoint-*"))
    assert f"checkpoint-{result.diverged_at_step}" not in saved
    for name in saved:  # every checkpoint left behind is resumable: finite weights
        weights = load_file(str(tmp_path / "out" / "checkpoints" / name / "model.safetensors"))
        assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert Path(result.log_history_path).is_file()
    json.dumps(result.to_dict(), allow_nan=False)


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from phases.training import SFTTraining, TrainingInputError, train

    model, data, out = sys.argv[1:4]
    config = SFTTraining(max_steps=400, batch_size=2, save_steps=2, logging_steps=1)
    train(config, model=model, train_path=Path(data), eval_path=None, output_dir=Path(out))
    """
)


def test_sigkilled_run_resumes_from_its_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(8))
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tiny_model_dir), str(data), str(out)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        # A checkpoint counts once its trainer_state.json is whole: killed while that file is
        # still being written, the checkpoint is rightly discarded and nothing is resumed.
        while not any(map(is_valid_checkpoint, (out / "checkpoints").glob("checkpoint-*"))):
            assert child.poll() is None, "the training subprocess died on its own"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    config = SFTTraining(max_steps=400, batch_size=2, save_steps=2, logging_steps=1)
    result = _run(tiny_model_dir, data, out, config=config, should_stop=lambda: True)
    assert result.resumed_from_step >= 2
    assert result.status == "cancelled" and result.global_step == result.resumed_from_step + 1


def test_a_checkpoint_damaged_after_saving_is_passed_over(tiny_model_dir: Path, tmp_path) -> None:
    """A truncated weights file (a copy cut short, a full disk) made resuming fail with
    "SafetensorError: invalid header length", and the run was lost to `resume`."""
    data = write_jsonl(tmp_path / "train.jsonl", prompt_completion_rows(8))
    out = tmp_path / "out"
    every_2 = CONFIG.model_copy(update={"save_steps": 2, "save_total_limit": 5})
    _run(tiny_model_dir, data, out, config=every_2, stop_at_fraction=0.7)  # pauses at step 4
    newest = out / "checkpoints" / "checkpoint-4"
    weights = next(newest.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    assert damaged_files(newest) == [weights.name]
    assert damaged_files(out / "checkpoints" / "checkpoint-2") == []
    resumed = _run(tiny_model_dir, data, out, config=every_2)
    assert resumed.status == "completed" and resumed.resumed_from_step == 2
    assert newest.is_dir()  # passed over, not deleted: the user may still want it
