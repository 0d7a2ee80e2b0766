"""The orchestrator's routing policy on hand-built states (no models, no graph run), and the
graph's entry node turning a run config (as Studio gives it) into the initial state."""

import json
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.agents.orchestrator import orchestrator
from llmfinetune_agent.agents.run_input import start
from llmfinetune_agent.config import ConfigError, parse_run_config
from llmfinetune_agent.routing import choose_next, next_training_stop

REPO = Path(__file__).resolve().parents[2]


def _state(**overrides: Any) -> dict[str, Any]:
    config = parse_run_config(
        {"data": {"train": "d.jsonl"}, "hitl": {"training_checkpoints": [0.5]}}
    ).model_dump(mode="json")
    state = {"config": config, "approved": {}, "decisions": [], "log": [], "outcome": "running"}
    if "data" in overrides:
        state["plan"] = PLAN  # planned once the data is prepared (see the typical path)
    state.update(overrides)
    return state


DATA = {"train_path": "t", "eval_path": "e", "data_hash": "h", "eval_rows": 2}
PLAN = {"total_steps": 10}
ALL_DATA_GATES = {"approve_plan": True, "approve_data": True}


def test_typical_path_in_order() -> None:
    assert choose_next(_state())[0] == "data_generator"
    assert choose_next(_state(data=DATA, plan=None))[0] == "planner"
    assert choose_next(_state(data=DATA))[0] == "gate_plan"
    assert choose_next(_state(data=DATA, approved={"approve_plan": True}))[0] == "gate_data"
    assert choose_next(_state(data=DATA, approved=ALL_DATA_GATES))[0] == "trainer"


def test_training_pauses_at_the_checkpoint_gate_then_continues() -> None:
    paused = {"status": "paused", "fraction": 0.5, "global_step": 5}
    state = _state(data=DATA, approved=ALL_DATA_GATES, training=paused)
    assert choose_next(state)[0] == "gate_training"
    assert next_training_stop(state) == 0.5
    state["approved"] = {**ALL_DATA_GATES, "training_checkpoint@0.5": True}
    assert choose_next(state)[0] == "trainer"
    assert next_training_stop(state) is None


def test_evaluation_gate_then_finalize_then_end() -> None:
    done = {"status": "completed", "model_path": "m"}
    state = _state(data=DATA, approved=ALL_DATA_GATES, training=done)
    state["approved"]["training_checkpoint@0.5"] = True
    assert choose_next(state)[0] == "evaluator"
    state["evaluation"] = {"passed": False, "tuned": {}}
    assert choose_next(state)[0] == "gate_evaluation"
    state["approved"]["approve_evaluation"] = True
    assert choose_next(state)[0] == "finalize"
    state["final"] = {"model_path": "f"}
    command = orchestrator(state)
    assert command.goto == "__end__" and command.update["outcome"] == "completed"


def test_rejected_evaluation_goes_to_the_debugger_then_the_fixes_gate_even_without_a_fix() -> None:
    state = _state(
        data=DATA,
        approved={**ALL_DATA_GATES, "training_checkpoint@0.5": True, "approve_evaluation": False},
        training={"status": "completed"},
        evaluation={"passed": True},
    )
    assert choose_next(state)[0] == "debugger"
    state["diagnoses"] = []
    command = orchestrator(state)
    assert command.goto == "gate_fixes" and "outcome" not in command.update
    assert "reviewer's own" in command.update["log"][0]["reason"]


def test_divergence_without_a_fix_fails_the_run() -> None:
    state = _state(
        data=DATA,
        approved=ALL_DATA_GATES,
        training={"status": "diverged", "diverged_at_step": 3},
        diagnoses=[],
    )
    command = orchestrator(state)
    assert command.update["outcome"] == "failed" and "step 3" in command.update["reason"]


def test_divergence_with_a_checkpoint_is_evaluated_then_diagnosed_without_the_gate() -> None:
    diverged = {"status": "diverged", "diverged_at_step": 3, "checkpoint_path": "c/checkpoint-2"}
    approved = {**ALL_DATA_GATES, "training_checkpoint@0.5": True}
    state = _state(data=DATA, approved=approved, training=diverged)
    node, reason, _ = choose_next(state)
    assert node == "evaluator" and "step 3" in reason and "last checkpoint" in reason
    state["evaluation"] = {"passed": False, "tuned": {"rougeL": 0.0, "perplexity": None}}
    node, reason, _ = choose_next(
        state
    )  # never the evaluation gate: a diverged run is not accepted
    assert node == "debugger" and "step 3" in reason


def test_disabled_gates_are_skipped() -> None:
    state = _state(data=DATA)
    for gate in ("approve_plan", "approve_data"):
        state["config"]["hitl"][gate] = False
    state["config"]["hitl"]["training_checkpoints"] = []
    assert choose_next(state)[0] == "trainer"


def test_every_choice_is_logged_with_a_reason() -> None:
    command = orchestrator(_state())
    (entry,) = command.update["log"]
    assert entry["next"] == "data_generator" and entry["reason"]


def _pasted_quickstart() -> dict[str, Any]:
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["model"]["name_or_path"] = "builtin:tiny-llama"
    return config


def test_the_entry_node_builds_the_initial_state_from_a_run_config(
    monkeypatch: pytest.MonkeyPatch, _isolated_home: Path
) -> None:
    monkeypatch.chdir(REPO)  # where `langgraph dev` runs
    config = _pasted_quickstart()
    train = str((REPO / "configs" / config["data"]["train"]).resolve())
    thread = {"configurable": {"thread_id": "thread-1"}}
    for graph_input in (config, {"config": config}):
        state = start(graph_input, thread, None)
        assert state["run_id"] == "thread-1" and state["iteration"] == 1
        run_dir = _isolated_home / "runs" / "thread-1"
        assert state["run_dir"] == str(run_dir)
        assert json.loads((run_dir / "config.json").read_text())["data"]["train"] == train
        assert state["config"]["data"]["train"] == train
        assert state["data"] is None and state["training"] is None
    assert state.get("model", "absent") == "absent"  # `{"config": ...}` brings no sections
    assert start(config, thread, None)["model"] is None  # a plain config's sections are emptied
    elsewhere = start({"config": config, "config_dir": "configs/data"}, thread, None)
    assert elsewhere["config"]["data"]["train"] == str(
        REPO / "configs/data/data/quickstart/train.jsonl"
    )
    service_state = {"run_id": "r1", "run_dir": "/somewhere", "config": config}
    assert start(service_state, thread, None) == {}
    with pytest.raises(ConfigError, match="training.learning_rate"):
        start({**config, "training": {**config["training"], "learning_rate": -1}}, thread, None)
