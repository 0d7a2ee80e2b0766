"""What a multi-process or cluster training asks for, checked without starting one: the plan's
step count, Ray's resource request per worker, the accelerate command line, the settings; and
how the processes' outcome files become the caller's error."""

import json
from pathlib import Path

import pytest

from llmfinetune_agent.settings import Settings, SettingsError
from phases.training import SFTTraining, TrainingResources, estimate_training
from phases.training.data import TrainingInputError
from phases.training.multiprocess import TrainingProcessError, _result, launch_command
from phases.training.ray_train import worker_resources


def test_each_process_takes_its_share_of_the_steps() -> None:
    one = estimate_training(SFTTraining(batch_size=4, epochs=1), num_examples=64, mean_tokens=10)
    two = estimate_training(
        SFTTraining(batch_size=4, epochs=1, num_processes=2), num_examples=64, mean_tokens=10
    )
    assert (one["total_steps"], two["total_steps"]) == (16, 8)
    assert one["tokens"] == two["tokens"]  # the same data, in half the optimizer steps


def test_resources_are_asked_per_worker_never_pooled() -> None:
    assert worker_resources(TrainingResources()) == {"CPU": 1}
    gpu = TrainingResources(gpus=1, cpus=4, memory_gb=16)
    assert worker_resources(gpu) == {"CPU": 4, "GPU": 1, "memory": 16 * 2**30}


def test_the_accelerate_command_launches_one_process_each_on_this_machine(tmp_path) -> None:
    command = launch_command(3, tmp_path / "request.json")
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "3"
    assert command[command.index("--num_machines") + 1] == "1"
    assert command[-3:] == ["-m", "phases.training.process_entry", str(tmp_path / "request.json")]


def test_the_backend_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().backend == "local"
    monkeypatch.setenv("FINETUNE_AGENT_BACKEND", "Ray")
    monkeypatch.setenv("FINETUNE_AGENT_RAY_ADDRESS", "ray-head:6379")
    settings = Settings.from_env()
    assert (settings.backend, settings.ray_address) == ("ray", "ray-head:6379")
    monkeypatch.setenv("FINETUNE_AGENT_BACKEND", "slurm")
    with pytest.raises(SettingsError, match="FINETUNE_AGENT_BACKEND='slurm' is not a backend"):
        Settings.from_env()


def _launch_dir(tmp_path, outcomes: dict[str, dict], log: str = "") -> Path:
    for name, outcome in outcomes.items():
        (tmp_path / name).write_text(json.dumps(outcome))
    (tmp_path / "processes.log").write_text(log)
    return tmp_path


def test_the_process_that_failed_first_is_the_cause(tmp_path) -> None:
    # Process 1 failed first; process 0 then lost its connection to it in the all-reduce.
    broken = {"error": "RuntimeError: [gloo] Connection closed by peer", "failed_at": 20.0}
    first = {"error": "ValueError: a NaN in the batch", "failed_at": 10.0}
    launch = _launch_dir(tmp_path, {"result.json": broken, "error-1.json": first}, "Traceback…")
    with pytest.raises(TrainingProcessError) as failure:
        _result(launch, 1, 2)
    assert str(failure.value) == (
        "training process 1 of 2 failed: ValueError: a NaN in the batch "
        f"(full log: {launch / 'processes.log'})"
    )


def test_an_input_error_in_any_process_is_bad_input(tmp_path) -> None:
    launch = _launch_dir(tmp_path, {"error-1.json": {"input_error": "train.jsonl is empty"}})
    with pytest.raises(TrainingInputError, match="^train.jsonl is empty$"):
        _result(launch, 2, 2)


def test_processes_that_said_nothing_show_the_log_tail(tmp_path) -> None:
    launch = _launch_dir(tmp_path, {}, "x" * 5000 + "\naccelerate: command failed")
    with pytest.raises(TrainingProcessError) as failure:
        _result(launch, 1, 2)
    message = str(failure.value)
    assert message.startswith("the 2 training processes ended without a result. Last lines:")
    assert "accelerate: command failed" in message and len(message) < 2000
