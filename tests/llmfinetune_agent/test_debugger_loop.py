"""The improvement loop: debugger -> fixes gate -> next iteration, on hand-built states (fast),
then a whole run whose first iteration diverges (learning rate 10) and whose second, after the
approved fix, trains cleanly and beats it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.agents.gates import apply_fixes
from llmfinetune_agent.agents.improvement import FixSelectionError, fixes_patch
from llmfinetune_agent.agents.orchestrator import choose_next, orchestrator
from llmfinetune_agent.config import parse_run_config

REPO = Path(__file__).resolve().parents[2]
DATA = {"train_path": "t", "eval_path": "e", "data_hash": "h", "eval_rows": 2}
DIVERGENCE = {
    "index": 0,
    "kind": "divergence",
    "severity": "error",
    "summary": "diverged",
    "evidence": {"peak_loss": 3000.0},
    "patch": {"training": {"learning_rate": 0.001}},
}
DUPLICATES = {
    "index": 1,
    "kind": "duplicates",
    "severity": "warning",
    "summary": "repeats",
    "evidence": {},
    "patch": {"data": {"deduplicate": True}},
}
INFO = {
    "index": 2,
    "kind": "too_few_examples",
    "severity": "info",
    "summary": "few",
    "evidence": {},
    "patch": None,
}


def _state(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config = parse_run_config(
        {
            "data": {"train": "d.jsonl", "deduplicate": False},
            "training": {"learning_rate": 10.0},
            "hitl": {"approve_plan": False, "approve_data": False, "approve_evaluation": False},
        }
    ).model_dump(mode="json")
    state = {
        "run_dir": str(tmp_path),
        "config": config,
        "data": DATA,
        "approved": {},
        "decisions": [],
        "log": [],
        "iteration": 1,
        "outcome": "running",
        "training": {"status": "completed", "model_path": "m", "train_loss": 4000.0},
        "evaluation": {"passed": False, "tuned": {"rougeL": 0.0}, "base": {"rougeL": 0.0}},
    }
    state.update(overrides)
    return state


def test_a_missed_threshold_is_diagnosed_then_fixes_are_asked_for(tmp_path: Path) -> None:
    state = _state(tmp_path)
    assert choose_next(state)[0] == "debugger"
    state["diagnoses"] = [DIVERGENCE, INFO]
    node, reason = choose_next(state)
    assert node == "gate_fixes" and "1 fix" in reason


def test_approving_all_fixes_starts_iteration_two_and_retrains(tmp_path: Path) -> None:
    state = _state(
        tmp_path,
        diagnoses=[DIVERGENCE, INFO],
        approved={"approve_fixes": False, "training_checkpoint@0.5": True},
    )
    update = apply_fixes(state, {"decision": "approve", "edits": None, "comment": "go"})
    assert update["iteration"] == 2 and update["diagnoses"] is None
    assert update["config"]["training"]["learning_rate"] == 0.001
    assert update["training"] is None and update["evaluation"] is None
    assert update["approved"] == {}
    (record,) = update["iterations"]
    assert record["iteration"] == 1 and record["fix"] == DIVERGENCE["patch"]
    assert [d["kind"] for d in record["diagnoses"]] == ["divergence", "too_few_examples"]
    assert record["decisions"][0]["gate"] == "approve_fixes"
    assert choose_next({**state, **update})[0] == "trainer"
    assert json.loads((tmp_path / "config.json").read_text())["training"]["learning_rate"] == 0.001
    assert "divergence (error)" in (tmp_path / "iterations.md").read_text()


def test_select_by_index_and_edit_pick_the_patch(tmp_path: Path) -> None:
    diagnoses = [DIVERGENCE, DUPLICATES, INFO]
    assert fixes_patch(diagnoses, {"decision": "approve", "select": [1]}) == DUPLICATES["patch"]
    edit = {"decision": "edit", "edits": {"training": {"epochs": 1}}, "select": [0]}
    assert fixes_patch(diagnoses, edit) == {"training": {"learning_rate": 0.001, "epochs": 1}}
    with pytest.raises(FixSelectionError, match="index"):
        fixes_patch(diagnoses, {"decision": "approve", "select": [7]})
    with pytest.raises(FixSelectionError, match="nothing to apply"):
        fixes_patch(diagnoses, {"decision": "approve", "select": [2]})
    state = _state(tmp_path, diagnoses=diagnoses)
    update = apply_fixes(
        state, {"decision": "approve", "select": [1], "comment": "", "edits": None}
    )
    assert update["data"] is None and update["config"]["data"]["deduplicate"] is True
    assert choose_next({**state, **update})[0] == "data_generator"  # a data fix re-prepares


def test_no_fix_or_no_iterations_left_ends_the_run(tmp_path: Path) -> None:
    command = orchestrator(_state(tmp_path, diagnoses=[INFO]))
    assert command.update["outcome"] == "failed" and "too_few_examples" in command.update["reason"]
    state = _state(tmp_path, diagnoses=[DIVERGENCE], iteration=3)
    command = orchestrator(state)
    assert (
        command.update["outcome"] == "failed" and "max_iterations (2)" in command.update["reason"]
    )


def test_fixes_apply_themselves_when_approve_fixes_is_off(tmp_path: Path) -> None:
    state = _state(tmp_path, diagnoses=[DIVERGENCE])
    state["config"]["hitl"]["approve_fixes"] = False
    command = orchestrator(state)
    assert command.goto == "trainer"
    assert command.update["iteration"] == 2
    assert [e["next"] for e in command.update["log"]] == ["__apply_fixes__", "trainer"]


def _loop_config(tmp_path: Path) -> Path:
    config = json.loads((REPO / "configs" / "quickstart.json").read_text())
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["training"].update(
        {
            "learning_rate": 10.0,
            "max_steps": 4,
            "save_steps": 100,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
        }
    )
    config["evaluation"].update(
        {
            "metrics": ["rougeL", "perplexity"],
            "thresholds": {"perplexity": 5000.0},
            "max_examples": 4,
            "max_new_tokens": 8,
        }
    )
    config["debugger"]["max_iterations"] = 1
    config["hitl"] = {
        "approve_plan": False,
        "approve_data": False,
        "training_checkpoints": [],
        "approve_evaluation": False,
        "approve_fixes": True,
    }
    path = tmp_path / "loop.json"
    path.write_text(json.dumps(config))
    return path


def test_divergence_fix_second_iteration_beats_the_first(tmp_path: Path) -> None:
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.runner import describe_run, open_service

    with open_service() as service:
        run = service.create_run(load_run_config(_loop_config(tmp_path)))
        record = service.start(run.id)
        assert record.status == "awaiting_approval", record.error
        pending = service.pending_interrupts(run.id)[0]
        assert pending["kind"] == "approve_fixes"
        kinds = {d["kind"]: d for d in pending["details"]["diagnoses"]}
        assert kinds["divergence"]["severity"] == "error"
        assert kinds["divergence"]["patch"]["training"]["learning_rate"] <= 1e-3
        record = service.resume(run.id, decision={"decision": "approve", "comment": "lower lr"})
        assert record.status == "completed", record.error
        info = describe_run(service, run.id)

    first, second = info["iterations"]
    assert [first["iteration"], second["iteration"]] == [1, 2]
    assert "divergence" in [d["kind"] for d in first["diagnoses"]]
    assert second["config_patch"] == first["fix"] and second["diagnoses"] == []
    # Iteration 1 blew up (no model to evaluate); iteration 2 trained and beat both it and base.
    assert first["training"]["status"] == "diverged" and first["metrics"]["tuned"] == {}
    assert second["training"]["status"] == "completed" and second["passed"] is True
    assert second["training"]["train_loss"] < first["training"]["train_loss"] / 100
    assert second["metrics"]["tuned"]["perplexity"] < second["metrics"]["base"]["perplexity"]
    history = json.loads(Path(service_training_history(info["run_dir"], second)).read_text())
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses and all(v is not None and math.isfinite(v) for v in losses)
    assert max(losses) < 3 * losses[0]
    card = (Path(info["model_path"]) / "README.md").read_text()
    assert "## Iterations" in card and "| 1 |" in card and "| 2 |" in card


def service_training_history(run_dir: str, iteration: dict[str, Any]) -> Path:
    """The log history of the newest training directory (iteration 2 trained last)."""
    histories = sorted(
        Path(run_dir, "training").glob("*/log_history.json"), key=lambda p: p.stat().st_mtime
    )
    return histories[-1]
