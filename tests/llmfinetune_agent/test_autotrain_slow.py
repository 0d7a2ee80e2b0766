"""AutoTrain for real: `finetune-agent backends install autotrain` builds its environment, a LoRA
SFT run of the tiny Llama trains through it and its evaluation moves, a crash AutoTrain hides
behind exit code 0 ends the run `failed` with AutoTrain's own words, and a cancel stops its
whole process tree.

The install goes to a stable folder (`$FINETUNE_AGENT_TEST_BACKENDS_DIR`, default
`~/.cache/finetune-agent-tests/backends`): the first run on a machine builds it (about 4 minutes
on an idle machine, 7.4 GB), later runs find it installed with the same pins and only check that
it imports. Delete the folder to test the install from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import RunService, open_service
from tests.llmfinetune_agent.test_autotrain_backend import autotrain_run_config

# The first test also builds the environment (up to 15 minutes on a busy machine, see README):
# past the suite's 900 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

BACKENDS_ENV = "FINETUNE_AGENT_TEST_BACKENDS_DIR"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmfinetune_agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed backend, through the command a user runs."""
    folder = Path(
        os.environ.get(BACKENDS_ENV) or Path.home() / ".cache/finetune-agent-tests/backends"
    )
    env = {
        **os.environ,
        "FINETUNE_AGENT_HOME": str(tmp_path_factory.mktemp("home")),
        "FINETUNE_AGENT_BACKENDS_DIR": str(folder),
    }
    installed = _cli("backends", "install", "autotrain", env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert f"autotrain 0.8.36 installed in {folder / 'autotrain'}" in installed.stdout
    assert "torch 2.14.1, transformers 4.48.0" in installed.stdout
    listed = _cli("backends", "list", env=env)
    assert f"autotrain  0.8.36  {folder / 'autotrain'}" in listed.stdout
    return folder


@pytest.fixture
def service(backends: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FINETUNE_AGENT_BACKENDS_DIR", str(backends))
    with open_service() as opened:
        yield opened


def _config(**training: Any) -> dict[str, Any]:
    settings = {
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
        "epochs": 3,
        "learning_rate": 0.01,
        "batch_size": 8,
        "logging_steps": 1,
    }
    config = autotrain_run_config(**{**settings, **training})
    config["evaluation"] = {
        "metrics": ["perplexity", "rougeL"],
        "max_examples": 8,
        "max_new_tokens": 16,
    }
    config["debugger"] = {"enabled": False}
    config["hitl"] = {
        "approve_plan": True,
        "approve_data": False,
        "training_checkpoints": [0.5],
        "approve_evaluation": True,
        "approve_fixes": False,
    }
    return config


def _events(service: RunService, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in service.store.list_events(run_id=run_id) if e.kind == kind]


def test_lora_sft_through_autotrain_trains_and_the_evaluation_moves(service: RunService) -> None:
    run = service.create_run(parse_run_config(_config()))
    record = service.start(run.id)
    plan_gate = record.pending_interrupt
    assert plan_gate["kind"] == "approve_plan"
    assert "Trained by AutoTrain 0.8.36" in plan_gate["message"]
    assert "the training checkpoint gate at 50% is not asked" in plan_gate["message"]
    assert plan_gate["details"]["estimate"]["backend"]["gates_not_paused"] == [0.5]

    record = service.resume(run.id, decision={"decision": "approve"})
    assert record.pending_interrupt["kind"] == "approve_evaluation"  # no pause at 50%
    record = service.resume(run.id, decision={"decision": "approve"})
    assert record.status == "completed", record.error

    state = service.state_values(run.id)
    training, artifact = state["training"], state["artifact"]
    assert training["status"] == "completed" and "through AutoTrain" in training["message"]
    assert artifact["kind"] == "adapter"
    adapter = Path(artifact["path"])
    assert (adapter / "adapter_model.safetensors").is_file()
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base) == Path(os.environ["FINETUNE_AGENT_HOME"]) / "models/builtin/tiny-llama"
    # Progress reached the event log as the TRL trainer's does: steps in order, with losses.
    # The plan counted AutoTrain's packed blocks: its steps are the steps trained.
    assert plan_gate["details"]["estimate"]["total_steps"] == training["total_steps"]
    progress = _events(service, run.id, "training_progress")
    assert (
        progress and progress[-1]["step"] == progress[-1]["total_steps"] == training["total_steps"]
    )
    assert [p["step"] for p in progress] == sorted(p["step"] for p in progress)
    history = json.loads(Path(training["log_history_path"]).read_text())
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == training["total_steps"] and losses[-1] < losses[0] - 0.5
    # The tuned model differs from the base where it counts: it predicts the held-out answers
    # better (perplexity of the references, lower is better).
    metrics = state["evaluation"]
    assert metrics["tuned"]["perplexity"] < 0.8 * metrics["base"]["perplexity"], metrics
    assert Path(record.model_path, "config.json").is_file()  # finalize merged the adapter


def test_an_autotrain_crash_ends_the_run_failed_with_its_own_error_text(
    service: RunService,
) -> None:
    # The data file has a `text` column; AutoTrain is told to read `answer`, fails inside its
    # trainer, logs the error and exits 0.
    config = _config(autotrain_params={"text_column": "answer"})
    config["hitl"] = {"approve_plan": False, "approve_data": False}
    run = service.create_run(parse_run_config(config))
    record = service.start(run.id)

    assert record.status == "failed"
    assert record.error.startswith("AutoTrain failed: ValueError: Error occurred while packing")
    assert "(caused by KeyError: 'answer')" in record.error
    assert "its process exited 0" in record.error
    shown = CliRunner().invoke(app, ["runs", "show", run.id, "--json"])
    assert "(caused by KeyError: 'answer')" in json.loads(shown.output)["error"]
    assert (
        "caused by KeyError: 'answer'" in CliRunner().invoke(app, ["runs", "show", run.id]).output
    )
    state = service.state_values(run.id)
    assert state["training"]["status"] == "failed" and state.get("artifact") is None
    assert not state.get("evaluation")


def test_cancel_stops_autotrains_whole_process_tree(service: RunService) -> None:
    config = _config(epochs=200)
    config["hitl"] = {"approve_plan": False, "approve_data": False}
    run = service.create_run(parse_run_config(config))
    thread = threading.Thread(target=service.start, args=(run.id,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not _events(service, run.id, "training_progress"):
        assert time.monotonic() < deadline, "AutoTrain reported no progress"
        time.sleep(0.5)
    pid_file = next(Path(service.require(run.id).run_dir, "training").glob("*/autotrain.pid"))
    leader = psutil.Process(int(pid_file.read_text().split()[0]))
    tree = [leader, *leader.children(recursive=True)]
    assert len(tree) >= 3  # autotrain -> accelerate launch -> the trainer

    cancelled = CliRunner().invoke(app, ["cancel", run.id])
    assert cancelled.exit_code == 0, cancelled.output
    thread.join(120)
    assert not thread.is_alive()
    record = service.require(run.id)
    assert record.status == "cancelled", record.error
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert (
        "AutoTrain's processes were stopped" in service.state_values(run.id)["training"]["message"]
    )
