"""Reading AutoTrain's output, on text AutoTrain 0.8.36 printed on this machine (paths shortened):
a LoRA SFT run of the tiny Llama (3 steps), and two runs that crashed inside training while the
process exited 0. Success is judged from the text and the files, never the exit code."""

from __future__ import annotations

from pathlib import Path

from phases.training.autotrain.log_reader import AutoTrainLog
from phases.training.autotrain.run import judge, missing_outputs
from phases.training.config import parse_training_config

LOGS = Path(__file__).parent / "logs"
LORA = parse_training_config({"backend": "autotrain", "lora": {}})


def read(name: str, logging_steps: int = 1) -> tuple[AutoTrainLog, list]:
    """Feed a captured output line by line as the process reader does (\\r splits lines too)."""
    log = AutoTrainLog(logging_steps=logging_steps)
    text = (LOGS / name).read_text(encoding="utf-8").replace("\r", "\n")
    updates = [u for line in text.split("\n") if (u := log.feed(line)) is not None]
    return log, updates


def test_a_completed_run_reports_each_step_its_losses_and_the_summary() -> None:
    log, updates = read("sft_completed.log")

    assert log.started and log.error_text() is None
    assert (log.step, log.total_steps) == (3, 3)
    steps = [u.step for u in updates]
    assert sorted(set(steps)) == [1, 2, 3] and steps == sorted(steps)
    assert updates[-1].loss == 7.4453 and updates[-1].epoch == 3.0
    assert all(u.total_steps == 3 for u in updates)
    losses = [(h["step"], h["loss"]) for h in log.history if "loss" in h]
    assert losses == [(1, 7.6845), (2, 7.6845), (3, 7.4453)]
    assert log.history[-1]["epoch"] == 3.0 and log.history[-1]["learning_rate"] == 0.0
    assert log.summary is not None and log.summary["train_loss"] == 7.604808648427327
    assert log.summary["step"] == 3


def test_logging_every_k_steps_puts_the_nth_loss_at_step_n_times_k() -> None:
    log, _ = read("sft_completed.log", logging_steps=2)
    # The capture logged every step; read as every 2nd, steps are capped at the bar's total.
    assert [h["step"] for h in log.history if "loss" in h] == [2, 3, 3]


def test_a_crash_caught_by_autotrains_monitor_is_found_with_its_own_error_text() -> None:
    log, _ = read("sft_crashed_exit0.log")

    assert log.failed and log.summary is None
    assert log.error_text() == "ModuleNotFoundError: No module named 'triton.ops'"
    status, message = judge(log, Path("/nonexistent/model"), LORA, exit_code=0)
    assert status == "failed"
    assert "AutoTrain failed: ModuleNotFoundError: No module named 'triton.ops'" in message
    assert "its process exited 0" in message


def test_a_chain_of_exceptions_names_the_last_and_the_first() -> None:
    """A column AutoTrain cannot find: TRL's packing error, caused by the KeyError."""
    log, _ = read("sft_missing_column_exit0.log")

    assert log.failed and log.summary is None
    assert log.error_text() == (
        "ValueError: Error occurred while packing the dataset. Make sure that your dataset has "
        "enough samples to at least yield one packed sequence. (caused by KeyError: 'answer')"
    )


def test_a_crash_before_training_started_is_found_too() -> None:
    log, updates = read("unknown_tokenizer_exit0.log")

    assert not log.started and updates == []
    assert log.error_text() == (
        "ValueError: Tokenizer class TokenizersBackend does not exist or is not currently imported."
    )


def test_the_output_files_decide_with_the_text(tmp_path: Path) -> None:
    log, _ = read("sft_completed.log")
    model = tmp_path / "model"
    model.mkdir()
    (model / "training_args.bin").write_bytes(b"x")  # AutoTrain's args: not weights
    (model / "training_params.json").write_text("{}")

    assert missing_outputs(model, lora=True) == ["adapter_config.json", "weights"]
    status, message = judge(log, model, LORA, exit_code=0)
    assert status == "failed"
    assert "it saved no adapter_config.json, weights" in message

    (model / "adapter_config.json").write_text("{}")
    (model / "adapter_model.safetensors").write_bytes(b"x")
    assert missing_outputs(model, lora=True) == []
    assert missing_outputs(model, lora=False) == ["config.json"]
    assert judge(log, model, LORA, exit_code=0)[0] == "completed"
    # The same files with the text of a crash: failed, whatever the exit code.
    crashed, _ = read("sft_crashed_exit0.log")
    assert judge(crashed, model, LORA, exit_code=0)[0] == "failed"


def test_no_summary_means_not_trained(tmp_path: Path) -> None:
    log = AutoTrainLog()
    for line in ("INFO     | 2026-12-06 10:04:41 | x:y:1 - Starting SFT training...", "Killed"):
        log.feed(line)
    status, message = judge(log, tmp_path, LORA, exit_code=0)
    assert status == "failed"
    assert "no end-of-training summary" in message and "Killed" in message
