"""Progress seen from outside a run: `runs show` while the trainer works, the training gate's
ETA, and a continued iteration's gate after new steps.

    python -m pytest -q tests/llmfinetune_agent/test_progress.py
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

WORDS = ["red", "green", "blue", "amber", "violet", "cyan", "black", "white"]


def _write_config(tmp_path: Path, **overrides: Any) -> Path:
    """A tiny-model run on 24 prompt/completion rows; only the training gates ask (by default)."""
    rows = [
        {"prompt": f"Colour {i}: {WORDS[i % 8]}. Repeat it.", "completion": f" {WORDS[i % 8]}"}
        for i in range(24)
    ]
    data = tmp_path / "colours.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "name": "progress",
        "task": "Repeat the colour.",
        "model": {"name_or_path": "builtin:tiny-llama"},
        "data": {"train": str(data), "eval_fraction": 0.1, "max_length": 32},
        "training": {
            "method": "sft",
            "lora": None,
            "max_steps": 6,
            "batch_size": 2,
            "learning_rate": 1e-3,
            "warmup_ratio": 0.0,
            "logging_steps": 1,
            "save_steps": 1000,
        },
        "evaluation": {"metrics": ["exact_match"], "max_examples": 2, "max_new_tokens": 4},
        "debugger": {"enabled": True, "max_iterations": 2},
        "post_training": {"merge_lora": False, "quantize": None},
        "hitl": {
            "approve_plan": False,
            "approve_data": False,
            "training_checkpoints": [0.5],
            "approve_evaluation": False,
            "approve_fixes": True,
        },
    }
    for section, values in overrides.items():
        config[section].update(values)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config))
    return path


def _start_in_background(run_id: str, *, paced_steps: int = 0) -> threading.Thread:
    """Execute the run in another thread with its own service, as a worker process would.

    The runner logs training progress at most once per PROGRESS_LOG_SECONDS; a fast machine
    can run a whole segment inside one such window. The event sink handed to the runner
    (as the CLI's display is) therefore takes that long over each of the first `paced_steps`
    progress events, so each of them reaches the log, however fast the steps are.
    """
    from llmfinetune_agent.execution import PROGRESS_LOG_SECONDS, open_service

    paced = {"left": paced_steps}

    def slow_reader(kind: str, _payload: dict[str, Any]) -> None:
        if kind == "training_progress" and paced["left"] > 0:
            paced["left"] -= 1
            time.sleep(PROGRESS_LOG_SECONDS + 0.05)

    def work() -> None:
        with open_service() as service:
            service.start(run_id, on_event=slow_reader)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _watch_training(service: Any, run_id: str, thread: threading.Thread) -> list[dict[str, Any]]:
    """`describe_run` every 0.2 s until the background execution stops: the views taken while
    the trainer was the running node and had reported a step."""
    from llmfinetune_agent.execution import describe_run

    seen = []
    while thread.is_alive():
        info = describe_run(service, run_id)
        training = info["training"] or {}
        training_now = info["status"] == "running" and info["current_node"] == "trainer"
        if training_now and training.get("global_step") is not None:
            seen.append(training)
        time.sleep(0.2)
    thread.join()
    return seen


@pytest.mark.slow
def test_runs_show_names_the_trainer_with_step_loss_and_eta_while_it_trains(
    tmp_path: Path,
) -> None:
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service

    path = _write_config(tmp_path, training={"max_steps": 40})
    with open_service() as service:
        run = service.create_run(load_run_config(path))
        thread = _start_in_background(run.id, paced_steps=4)
        seen = _watch_training(service, run.id, thread)
        info = describe_run(service, run.id)

    assert info["status"] == "awaiting_approval", info["error"]
    assert len(seen) >= 2, "no live training progress was visible while the trainer ran"
    steps = [view["global_step"] for view in seen]
    assert steps == sorted(steps) and steps[-1] > steps[0]
    for view in seen:
        assert view["status"] == "running"
        assert view["total_steps"] == 40
        assert 0 < view["global_step"] <= 20  # the gate at 50% stops this segment
        assert view["train_loss"] > 0
        assert view["eta_seconds"] > 0

    gate = info["pending_interrupt"]
    assert gate["kind"] == "training_checkpoint" and info["current_node"] == "gate_training"
    assert gate["details"]["step"] == 20
    assert isinstance(gate["details"]["eta_seconds"], float) and gate["details"]["eta_seconds"] > 0
    assert info["training"]["eta_seconds"] == gate["details"]["eta_seconds"]


def test_a_finished_segment_is_shown_from_the_graph_state(tmp_path: Path) -> None:
    """At the gate the run is no longer training: `training` is the paused segment itself."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service

    with open_service() as service:
        run = service.create_run(load_run_config(_write_config(tmp_path)))
        service.start(run.id)
        info = describe_run(service, run.id)
        events = [e.kind for e in service.store.list_events(run_id=run.id)]
    training = info["training"]
    assert (training["status"], training["global_step"], training["total_steps"]) == (
        "paused",
        3,
        6,
    )
    assert training["eta_seconds"] > 0
    assert info["pending_interrupt"]["details"]["eta_seconds"] == training["eta_seconds"]
    assert events.index("node_started") < events.index("training_progress")


def _dead_owner() -> str:
    """A claim owner naming a process of this host that has exited."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return f"{socket.gethostname()}:{int(gone.stdout)}:dead"


@pytest.mark.parametrize("alive", [True, False])
def test_the_live_view_is_this_segments_newest_step(tmp_path: Path, alive: bool) -> None:
    """What a worker leaves in the run store mid-training, read by `runs show` and the API:
    the newest progress since the trainer started (an older segment's is ignored); a run whose
    process is gone keeps its last step, marked interrupted, without an ETA."""
    from llmfinetune_agent.cli.display import running_line
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service
    from llmfinetune_agent.run_store import make_owner

    def progress(step: int, loss: float, eta: float) -> dict[str, Any]:
        return {"step": step, "total_steps": 40, "loss": loss, "eta_seconds": eta}

    with open_service() as service:
        run = service.create_run(load_run_config(_write_config(tmp_path)))
        assert service.store.claim_run(
            run_id=run.id, owner=make_owner() if alive else _dead_owner()
        )
        service.store.update_run(run_id=run.id, current_node="trainer")
        log = service.store.append_event
        log(run_id=run.id, kind="node_started", payload={"node": "trainer"})
        log(run_id=run.id, kind="training_progress", payload=progress(20, 2.5, 30.0))
        log(run_id=run.id, kind="node_started", payload={"node": "trainer"})  # after the gate
        assert describe_run(service, run.id)["training"]["global_step"] is None
        for step, loss, eta in [(21, 2.25, 28.5), (23, 2.125, 75.0)]:
            log(run_id=run.id, kind="training_progress", payload=progress(step, loss, eta))
        info = describe_run(service, run.id)

    training = info["training"]
    assert (info["status"], info["current_node"]) == ("running", "trainer")
    assert (training["global_step"], training["total_steps"], training["train_loss"]) == (
        23,
        40,
        2.125,
    )
    if alive:
        assert (training["status"], training["eta_seconds"]) == ("running", 75.0)
        assert (
            running_line(info) == "running: trainer, step 23 of 40, loss 2.1250, about 1m 15s left"
        )
    else:
        assert (training["status"], training["eta_seconds"]) == ("interrupted", None)
        assert running_line(info) == "interrupted in: trainer, step 23 of 40, loss 2.1250"


@pytest.mark.slow
def test_a_continued_iteration_asks_at_its_gate_only_after_new_steps(tmp_path: Path) -> None:
    """Iteration 1 trains 6 steps; iteration 2 continues from step 6 to 12. Its 50% gate
    (step 6) was passed before it started: it is not asked; its 75% gate (step 9) is, after
    three new steps."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service

    path = _write_config(
        tmp_path,
        hitl={"training_checkpoints": [0.5, 0.75], "approve_evaluation": True},
    )
    with open_service() as service:
        run = service.create_run(load_run_config(path))
        service.start(run.id)
        for _ in range(2):  # iteration 1's gates at steps 3 and 4 (75% of 6, rounded)
            assert service.pending_interrupts(run.id)[0]["kind"] == "training_checkpoint"
            service.resume(run.id, decision={"decision": "approve"})
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_evaluation"
        service.resume(run.id, decision={"decision": "reject", "comment": "train longer"})
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_fixes"
        longer = {"decision": "edit", "edits": {"training": {"max_steps": 12}}, "route": "continue"}
        service.resume(run.id, decision=longer)

        gate = service.pending_interrupts(run.id)[0]
        paused = service.state_values(run.id)["training"]
        info = describe_run(service, run.id)

    assert info["iteration"] == 2
    assert gate["kind"] == "training_checkpoint", gate
    assert gate["message"].startswith("Training is 75% complete")
    assert paused["continued_from"].endswith("checkpoint-6")
    assert (paused["resumed_from_step"], paused["global_step"]) == (6, 9)
    assert gate["details"]["step"] == 9 > paused["resumed_from_step"]
    assert paused["gates_passed_at_start"] == [0.5]
    assert isinstance(gate["details"]["eta_seconds"], float)


def test_a_paused_checkpoint_deleted_at_the_gate_is_said_when_training_goes_on(
    tmp_path: Path,
) -> None:
    """Training silently started again from step 0 when the checkpoint approved at the 50%
    gate had been deleted meanwhile."""
    import shutil

    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import open_service

    with open_service() as service:
        run = service.create_run(load_run_config(_write_config(tmp_path)))
        service.start(run.id)
        paused = service.state_values(run.id)["training"]
        shutil.rmtree(Path(paused["checkpoint_path"]).parent)
        service.resume(run.id, decision={"decision": "approve"})
        training = service.state_values(run.id)["training"]
        messages = [
            e.payload.get("message", "")
            for e in service.store.list_events(run_id=run.id)
            if e.kind == "agent"
        ]
    assert training["resumed_from_step"] == 0 and training["steps_trained_again"] == 3
    assert any("the checkpoint at step 3 is gone" in m for m in messages), messages
