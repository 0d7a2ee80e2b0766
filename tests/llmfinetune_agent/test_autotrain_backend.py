"""The AutoTrain backend in the orchestration layer, without AutoTrain installed: a run that asks
for it fails at the plan, before any compute, with the command that installs it; a training that
AutoTrain crashed ends the run `failed` with its message; `backends list` says what is there;
the plan gate says which training gates AutoTrain cannot pause at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.agents.gates import _backend_note
from llmfinetune_agent.cli import app
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from llmfinetune_agent.routing import choose_next
from phases.training.autotrain.environment import (
    MANIFEST,
    BackendInstall,
    installed_backend,
    pins_sha256,
    write_manifest,
)

REPO = Path(__file__).resolve().parents[2]
INSTALL = "finetune-agent backends install autotrain"


def autotrain_run_config(**training: Any) -> dict[str, Any]:
    """The tiny-model quickstart trained by AutoTrain with LoRA."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["training"] = {
        "backend": "autotrain",
        "lora": {"r": 8, "alpha": 16},
        "epochs": 1,
        **training,
    }
    return config


@pytest.fixture
def no_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "backends"
    monkeypatch.setenv("FINETUNE_AGENT_BACKENDS_DIR", str(folder))
    return folder


def test_a_run_asking_for_autotrain_without_it_fails_at_the_plan(no_backends: Path) -> None:
    with open_service() as service:
        run = service.create_run(parse_run_config(autotrain_run_config()))
        record = service.start(run.id)
        events = [e.kind for e in service.store.list_events(run_id=run.id)]
        nodes = [
            e.payload["node"]
            for e in service.store.list_events(run_id=run.id)
            if e.kind == "node_started"
        ]

    assert record.status == "failed"
    assert f"Install it with `{INSTALL}`" in record.error
    assert str(no_backends / "autotrain") in record.error
    assert nodes[-1] == "planner" and "trainer" not in nodes and "gate_plan" not in nodes
    assert "interrupt" not in events
    assert not (Path(record.run_dir) / "training").exists()


def test_a_half_finished_or_stale_install_counts_as_absent(no_backends: Path) -> None:
    target = no_backends / "autotrain"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "autotrain").write_text("#!/bin/sh\n")
    assert installed_backend(no_backends) is None  # no manifest: the install did not finish

    install = BackendInstall(
        name="autotrain",
        version="0.8.36",
        path=str(target),
        python="3.11.7",
        packages={"torch": "2.14.1"},
        pins_sha256=pins_sha256(),
        size_bytes=7_300_000_000,
        install_seconds=234.0,
        installed_at="2026-12-06T10:00:00+00:00",
    )
    write_manifest(install)
    assert installed_backend(no_backends) == install
    listed = CliRunner().invoke(app, ["backends", "list"])
    assert listed.exit_code == 0
    assert f"autotrain  0.8.36  {target}  7.3 GB" in listed.output

    stale = json.loads((target / MANIFEST).read_text())
    stale["pins_sha256"] = "0" * 64  # built from other pins
    (target / MANIFEST).write_text(json.dumps(stale))
    assert installed_backend(no_backends) is None
    listed = CliRunner().invoke(app, ["backends", "list"])
    assert f"autotrain  not installed: {INSTALL}" in listed.output


def test_unknown_backend_names_are_refused(no_backends: Path) -> None:
    result = CliRunner().invoke(app, ["backends", "install", "ludwig"])
    assert result.exit_code == 2
    assert "unknown backend 'ludwig'; known: autotrain" in result.output


def test_a_backends_folder_that_is_a_file_is_named(tmp_path: Path, monkeypatch) -> None:
    """`install` ended in a mkdir traceback (NotADirectoryError) before any pip step."""
    from phases.training.autotrain import install

    monkeypatch.setattr(install, "_check_platform", lambda: None)  # refused elsewhere anyway
    blocker = tmp_path / "backends"
    blocker.write_text("")
    monkeypatch.setenv("FINETUNE_AGENT_BACKENDS_DIR", str(blocker))
    result = CliRunner().invoke(app, ["backends", "install", "autotrain"])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"error: cannot make the environment's folder {blocker / 'autotrain'}: {blocker} is not "
        f"a folder. Set FINETUNE_AGENT_BACKENDS_DIR to a folder you can write (now: {blocker})\n"
    )
    assert blocker.read_text() == ""


def test_remove_takes_a_file_or_link_in_the_environments_place(no_backends: Path) -> None:
    """A file there ended `remove` in an rmtree traceback; a link is removed, not followed."""
    kept = no_backends / "kept"
    kept.mkdir(parents=True)
    (kept / "mine.txt").write_text("mine")
    for make in (lambda p: p.write_text("x"), lambda p: p.symlink_to(kept)):
        make(no_backends / "autotrain")
        result = CliRunner().invoke(app, ["backends", "remove", "autotrain"])
        assert result.exit_code == 0 and result.output == "autotrain removed\n", result.output
        assert not (no_backends / "autotrain").is_symlink()
        assert not (no_backends / "autotrain").exists()
    assert (kept / "mine.txt").read_text() == "mine"


def test_a_crashed_training_ends_the_run_failed_with_its_message() -> None:
    config = parse_run_config({"data": {"train": "d.jsonl"}}).model_dump(mode="json")
    message = "AutoTrain failed: KeyError: 'answer' (its process exited 0; ...)"
    state = {
        "config": config,
        "approved": {"approve_plan": True, "approve_data": True},
        "decisions": [],
        "log": [],
        "outcome": "running",
        "data": {"train_path": "t", "eval_path": "e", "data_hash": "h", "eval_rows": 2},
        "plan": {"total_steps": 3},
        "training": {"status": "failed", "message": message},
    }
    assert choose_next(state) == ("__end__", message, "failed")


@pytest.mark.parametrize(
    "examples, mean_tokens, max_length, batch, steps",
    # Measured: 144 quickstart chats (mean 47.04 tokens) trained 7 steps an epoch; 16 short
    # texts of 12 tokens in blocks of 64 trained 3 steps in 3 epochs of batch 4.
    [(144, 47.04, 128, 8, 7), (16, 12.0, 64, 4, 1)],
)
def test_the_plan_counts_the_blocks_autotrain_packs(
    examples: int, mean_tokens: float, max_length: int, batch: int, steps: int
) -> None:
    from phases.training import estimate_training, parse_training_config
    from phases.training.autotrain.plan import trained_sequences

    config = parse_training_config({"backend": "autotrain", "epochs": 1, "batch_size": batch})
    sequences, tokens = trained_sequences(config, examples, mean_tokens, max_length=max_length)
    assert tokens == max_length
    assert (
        estimate_training(config, num_examples=sequences, mean_tokens=tokens)["total_steps"]
        == steps
    )
    dpo = parse_training_config({"backend": "autotrain", "method": "dpo"})
    assert trained_sequences(dpo, examples, mean_tokens, max_length=max_length) == (
        examples,
        mean_tokens,
    )


def test_the_plan_gate_names_the_gates_autotrain_cannot_pause_at() -> None:
    backend = {"version": "0.8.36", "gates_not_paused": [0.25, 0.5]}
    assert _backend_note(backend) == (
        " Trained by AutoTrain 0.8.36 in its own environment; it cannot pause, so the training "
        "checkpoint gate at 25%, 50% is not asked."
    )
    assert _backend_note(None) == ""
