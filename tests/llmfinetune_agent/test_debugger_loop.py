"""The improvement loop: debugger -> fixes gate -> next iteration, on hand-built states (fast),
including which route a fix takes (retrain, continue from the checkpoint, regenerate data);
then whole runs: one whose first iteration diverges (learning rate 10; its last checkpoint
before the blow-up is evaluated) and whose second, after the approved fix, trains cleanly and
beats its metrics, and one that underfits and continues."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmfinetune_agent.agents.fixes_agent import apply_fixes, apply_fixes_node
from llmfinetune_agent.agents.gates import (
    DecisionError,
    _proposed_route,
    validate_decision,
    validate_gate_decision,
)
from llmfinetune_agent.agents.orchestrator import orchestrator
from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.improvement import (
    FixSelectionError,
    all_iterations,
    fixes_patch,
    usable_warm_start,
)
from llmfinetune_agent.routing import choose_next

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
        "plan": {"total_steps": 10},
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
    node, reason, _ = choose_next(state)
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
    # The training settings changed: the cost is estimated again, then the model retrained.
    assert update["plan"] is None and choose_next({**state, **update})[0] == "planner"
    assert choose_next({**state, **update, "plan": {"total_steps": 10}})[0] == "trainer"
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


def _rejected(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Iteration 1's evaluation, rejected by the reviewer with a comment."""
    reject = {"gate": "approve_evaluation", "decision": "reject", "patch": None}
    decision = {**reject, "comment": "ages are all 30", "time": "t", "iteration": 1}
    state = _state(tmp_path, approved={"approve_evaluation": False}, decisions=[decision])
    state["config"]["hitl"]["approve_evaluation"] = True
    state.update(overrides)
    return state


def test_a_rejection_always_reaches_the_fixes_gate(tmp_path: Path) -> None:
    assert choose_next(_rejected(tmp_path))[0] == "debugger"
    for diagnoses in ([], [INFO], [DIVERGENCE]):
        node, reason, _ = choose_next(_rejected(tmp_path, diagnoses=diagnoses))
        assert node == "gate_fixes", reason
    # No iteration left: the reviewer still decides (a missed threshold alone would fail).
    node, reason, _ = choose_next(_rejected(tmp_path, diagnoses=[DIVERGENCE], iteration=3))
    assert node == "gate_fixes" and "max_iterations (2) is used up" in reason
    disabled = _rejected(tmp_path)
    disabled["config"]["debugger"]["enabled"] = False
    assert choose_next(disabled)[0] == "gate_fixes"


def test_a_rejection_with_approve_fixes_off_applies_fixes_or_else_asks(tmp_path: Path) -> None:
    state = _rejected(tmp_path, diagnoses=[DIVERGENCE])
    state["config"]["hitl"]["approve_fixes"] = False
    assert orchestrator(state).goto == "apply_fixes"
    update = apply_fixes_node(state)
    assert update["iteration"] == 2 and choose_next(_after(state, update)).node == "planner"
    (record,) = update["iterations"]
    assert record["rejected"] and record["reviewer_comment"] == "ages are all 30"
    for diagnoses, iteration in (([INFO], 1), ([DIVERGENCE], 3)):
        state = _rejected(tmp_path, diagnoses=diagnoses, iteration=iteration)
        state["decisions"][0]["iteration"] = iteration
        state["config"]["hitl"]["approve_fixes"] = False
        assert orchestrator(state).goto == "gate_fixes"


def test_approve_with_nothing_to_apply_is_refused_edit_and_reject_are_not(tmp_path: Path) -> None:
    state = _rejected(tmp_path, diagnoses=[INFO])
    with pytest.raises(DecisionError, match="the debugger proposed no fix.*edit.*reject"):
        validate_gate_decision({"decision": "approve"}, state, "approve_fixes")
    edit = {"decision": "edit", "edits": {"training": {"learning_rate": 1e-3}}}
    assert validate_gate_decision(edit, state, "approve_fixes")["decision"] == "edit"
    assert validate_gate_decision({"decision": "reject"}, state, "approve_fixes")
    # Elsewhere an approval needs nothing to apply.
    assert validate_gate_decision({"decision": "approve"}, state, "approve_evaluation")


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
    assert (
        command.goto == "apply_fixes"
        and "approve_fixes is off" in command.update["log"][0]["reason"]
    )
    update = apply_fixes_node(state)
    assert update["iteration"] == 2 and update["fix_request"] is None
    assert choose_next(_after(state, update)).node == "planner"


def _after(state: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The state after a node's update (lists append, as their reducers do)."""
    appended = {
        k: [*state.get(k, []), *update[k]] for k in ("decisions", "iterations") if k in update
    }
    return {**state, **update, **appended}


UNDERFITTING = {
    "index": 0,
    "kind": "underfitting",
    "severity": "warning",
    "summary": "plateau",
    "evidence": {"first_loss": 7.0, "final_loss": 6.5},
    "patch": {"training": {"epochs": 6.0}},
    "route": "continue",
}
APPROVE = {"decision": "approve", "edits": None, "comment": ""}


def _trained(tmp_path: Path, step: int = 6, status: str = "completed") -> dict[str, Any]:
    """A training result whose last checkpoint exists (a Trainer state file at that step)."""
    checkpoint = tmp_path / "training" / "abc" / "checkpoints" / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return {
        "status": status,
        "global_step": step,
        "total_steps": step,
        "model_path": "m",
        "checkpoint_path": str(checkpoint),
        "train_loss": 6.5,
    }


def test_underfitting_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    state = _state(tmp_path, diagnoses=[UNDERFITTING], training=_trained(tmp_path))
    assert _proposed_route(state, [UNDERFITTING])["proposed_route"] == "continue"
    update = apply_fixes(state, APPROVE)
    assert update["training"] is None and update["config"]["training"]["epochs"] == 6.0
    warm_start = update["warm_start"]
    assert warm_start["checkpoint"] == state["training"]["checkpoint_path"]
    assert (warm_start["from_iteration"], warm_start["step"]) == (1, 6)
    (decision,) = update["decisions"]
    assert decision["route"] == "continue" and "step 6" in decision["route_reason"]
    after = {
        **state,
        **update,
        "decisions": update["decisions"],
        "iterations": update["iterations"],
        "plan": {"total_steps": 12},  # the longer schedule, planned again
    }
    assert usable_warm_start(after) == warm_start
    node, reason, _ = choose_next(after)
    assert node == "trainer" and "iteration 1's checkpoint at step 6" in reason
    assert "route 'continue'" in reason
    assert [it["route"] for it in all_iterations(after)] == [None, "continue"]
    assert "| 2 | continue |" in (tmp_path / "iterations.md").read_text()
    # An edit of the learning rate since (or a fork with one) no longer fits the checkpoint.
    edited = {**after, "config": {**after["config"]}}
    edited["config"]["training"] = {**after["config"]["training"], "learning_rate": 1e-4}
    assert usable_warm_start(edited) is None


def test_a_learning_rate_fix_asked_to_continue_retrains_and_says_why(tmp_path: Path) -> None:
    state = _state(tmp_path, diagnoses=[DIVERGENCE], training=_trained(tmp_path))
    update = apply_fixes(state, {**APPROVE, "route": "continue"})
    (decision,) = update["decisions"]
    assert decision["route"] == "retrain" and decision["asked_route"] == "continue"
    assert "training.learning_rate" in decision["route_reason"]
    assert update["warm_start"] is None and update["training"] is None
    node, reason, _ = choose_next({**state, **update, "plan": {"total_steps": 10}})
    assert node == "trainer" and "continuing is not possible" in reason


def test_continue_needs_a_usable_last_checkpoint_and_a_longer_schedule(tmp_path: Path) -> None:
    def route(training: dict[str, Any], diagnosis: dict[str, Any] = UNDERFITTING, **value: Any):
        state = _state(tmp_path, diagnoses=[diagnosis], training=training)
        (decision,) = apply_fixes(state, {**APPROVE, **value})["decisions"]
        return decision["route"], decision["route_reason"]

    diverged = {**_trained(tmp_path), "status": "diverged"}
    taken, why = route(diverged)
    assert taken == "retrain" and "training is diverged" in why
    assert "no usable checkpoint" in route({**_trained(tmp_path), "checkpoint_path": None})[1]
    shorter = {**UNDERFITTING, "patch": {"training": {"epochs": 2.0}}}
    assert "does not lengthen" in route(_trained(tmp_path), shorter)[1]
    assert route(_trained(tmp_path), route="retrain")[0] == "retrain"
    with_data = {
        **UNDERFITTING,
        "patch": {"training": {"epochs": 6.0}, "data": {"deduplicate": True}},
    }
    assert route(_trained(tmp_path), with_data, route="continue")[0] == "regenerate_data"
    evaluation_only = {**UNDERFITTING, "patch": {"evaluation": {"max_new_tokens": 64}}}
    assert route(_trained(tmp_path), evaluation_only)[0] == "reevaluate"


def test_a_later_retraining_fix_clears_the_warm_start(tmp_path: Path) -> None:
    warm = {"checkpoint": "c", "from_iteration": 1, "step": 6, "key": "k"}
    state = _state(tmp_path, diagnoses=[DIVERGENCE], training=_trained(tmp_path), warm_start=warm)
    assert apply_fixes(state, APPROVE)["warm_start"] is None


def test_a_decision_route_must_be_retrain_or_continue() -> None:
    assert (
        validate_decision({"decision": "approve", "route": "continue"}, {})["route"] == "continue"
    )
    with pytest.raises(DecisionError, match="route must be one of"):
        validate_decision({"decision": "approve", "route": "sideways"}, {})


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_edits_go_with_an_edit_only(decision: str) -> None:
    # Dropped silently before: an approve carrying a patch went on with the old config.
    with pytest.raises(
        DecisionError, match=f"edits go with decision 'edit', not with '{decision}'"
    ):
        validate_decision({"decision": decision, "edits": {"training": {"epochs": 3}}}, {})
    assert validate_decision({"decision": decision, "edits": {}}, {})["edits"] is None


def quickstart_config() -> dict[str, Any]:
    """configs/quickstart.json on the tiny built-in model, its data paths made absolute."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["model"]["name_or_path"] = "builtin:tiny-llama"
    for key in ("train", "eval"):
        if config["data"].get(key):
            config["data"][key] = str(REPO / "configs" / config["data"][key])
    return config


def _loop_config(tmp_path: Path) -> Path:
    config = quickstart_config()
    config["training"].update(
        {
            "learning_rate": 10.0,
            "max_steps": 12,  # iteration 1 blows up at step 3; iteration 2 trains all 12
            "save_steps": 1,  # iteration 1 leaves a checkpoint before it blows up
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            # The NaN path is this test's subject. Under bfloat16 autocast (auto's choice on a CPU
            # with AMX) lr 10 blows the loss up without reaching NaN in 12 steps; the debugger
            # still diagnoses divergence then, as test_fault_injection checks in either precision.
            "precision": "float32",
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
    from llmfinetune_agent.execution import describe_run, open_service

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
    assert [d["kind"] for d in first["diagnoses"]] == ["divergence"]  # its noise is not blamed
    assert second["config_patch"] == first["fix"] and second["diagnoses"] == []
    assert second["route"] == "retrain"
    # Iteration 1 blew up; its last checkpoint before that was evaluated, marked as such: its
    # perplexity is not finite (e^(thousands of nats)) and it never passes.
    diverged_at = first["training"]["diverged_at_step"]
    assert first["training"]["status"] == "diverged" and first["passed"] is False
    assert 0 < first["evaluated_checkpoint_step"] < diverged_at
    assert first["metrics"]["tuned"]["perplexity"] is None
    assert first["not_finite"] == ["tuned.perplexity"]
    # Iteration 2 trained cleanly and beats iteration 1 (and the base) on its metrics.
    assert second["training"]["status"] == "completed" and second["passed"] is True
    assert second["training"]["train_loss"] < first["training"]["train_loss"] / 100
    tuned, base = second["metrics"]["tuned"], second["metrics"]["base"]
    assert math.isfinite(tuned["perplexity"]) and tuned["perplexity"] < base["perplexity"]
    assert tuned["rougeL"] > first["metrics"]["tuned"]["rougeL"]
    history = json.loads(Path(service_training_history(info["run_dir"], second)).read_text())
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses and all(v is not None and math.isfinite(v) for v in losses)
    assert max(losses) < 3 * losses[0]
    card = (Path(info["model_path"]) / "README.md").read_text()
    assert "## Iterations" in card and "| 1 |" in card and "| 2 | retrain |" in card
    # The run's report (GET /runs/{id}/report) and iterations.md show both, iteration 2's
    # metrics included.
    report = Path(info["run_dir"], "evaluation", "evaluation_report.md").read_text()
    table = Path(info["run_dir"], "iterations.md").read_text()
    for text in (report, table):
        row = next(line for line in text.splitlines() if line.startswith("| 2 | retrain |"))
        assert f"{tuned['rougeL']:.4g}" in row, row
        assert any(line.startswith("| 1 |") for line in text.splitlines())
    assert f"diverged at step {diverged_at}, evaluated at step" in card and "not finite" in card


def service_training_history(run_dir: str, iteration: dict[str, Any]) -> Path:
    """The log history of the newest training directory (iteration 2 trained last)."""
    histories = sorted(
        Path(run_dir, "training").glob("*/log_history.json"), key=lambda p: p.stat().st_mtime
    )
    return histories[-1]


def _underfitting_config(tmp_path: Path) -> Path:
    """Six steps at a modest rate: the loss is still falling when training stops."""
    config = json.loads(_loop_config(tmp_path).read_text())
    config["training"].update({"learning_rate": 1e-3, "max_steps": 6})
    config["hitl"]["approve_evaluation"] = True  # the reviewer rejects iteration 1
    path = tmp_path / "underfit.json"
    path.write_text(json.dumps(config))
    return path


def _reject_then_fix(tmp_path: Path, fix: dict[str, Any]) -> dict[str, Any]:
    """Run iteration 1, reject its evaluation, check the underfitting fix, apply `fix`, accept
    iteration 2; return `describe_run` and the first approve_fixes payload."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service

    with open_service() as service:
        run = service.create_run(load_run_config(_underfitting_config(tmp_path)))
        record = service.start(run.id)
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_evaluation", record.error
        service.resume(run.id, decision={"decision": "reject", "comment": "too weak"})
        pending = service.pending_interrupts(run.id)[0]
        assert pending["kind"] == "approve_fixes"
        service.resume(run.id, decision=fix)
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_evaluation"
        record = service.resume(run.id, decision={"decision": "approve"})
        assert record.status == "completed", record.error
        return {"info": describe_run(service, run.id), "fixes": pending["details"]}


def test_underfitting_fix_continues_from_iteration_ones_checkpoint(tmp_path: Path) -> None:
    result = _reject_then_fix(tmp_path, {"decision": "approve", "comment": "train longer"})
    fixes, info = result["fixes"], result["info"]
    underfitting = next(d for d in fixes["diagnoses"] if d["kind"] == "underfitting")
    assert underfitting["route"] == "continue"
    assert list(underfitting["patch"]) == ["training"]  # a longer schedule than 6 steps
    assert underfitting["patch"]["training"]["max_steps"] > 6
    assert fixes["proposed_route"] == "continue"

    first, second = info["iterations"]
    target = first["fix"]["training"]["max_steps"]  # every approved patch, merged
    assert first["training"]["global_step"] == 6 and first["route"] is None
    assert second["route"] == "continue" and "step 6" in second["route_reason"]
    trained = second["training"]
    assert trained["status"] == "completed" and trained["resumed_from_step"] == 6
    assert trained["global_step"] == trained["total_steps"] == target
    assert trained["continued_from"].endswith("checkpoint-6")
    assert trained["train_loss"] < first["training"]["train_loss"]
    losses = {e["step"]: e["loss"] for e in _history(info["run_dir"]) if "loss" in e}
    assert sorted(losses) == list(range(1, target + 1))
    # Step 7 starts where step 6 ended, not from the base model's loss at step 1.
    assert abs(losses[7] - losses[6]) < 0.3 * (losses[1] - losses[6])
    assert any("train on from iteration 1's checkpoint" in e["reason"] for e in info["routing"])
    card = (Path(info["model_path"]) / "README.md").read_text()
    assert "| 2 | continue |" in card
    assert "| 2 | continue |" in (Path(info["run_dir"]) / "iterations.md").read_text()


def test_a_retrain_route_overrides_continue_and_starts_from_step_zero(tmp_path: Path) -> None:
    fix = {"decision": "approve", "route": "retrain", "comment": "from scratch"}
    info = _reject_then_fix(tmp_path, fix)["info"]
    first, second = info["iterations"]
    assert second["route"] == "retrain" and "as asked" in second["route_reason"]
    trained = second["training"]
    assert trained["resumed_from_step"] == 0 and trained["continued_from"] is None
    target = first["fix"]["training"]["max_steps"]
    assert trained["global_step"] == trained["total_steps"] == target > 6
    losses = {e["step"]: e["loss"] for e in _history(info["run_dir"]) if "loss" in e}
    assert losses[1] == pytest.approx(first_loss_of_iteration_one(info["run_dir"]))


def _history(run_dir: str) -> list[dict[str, Any]]:
    return json.loads(service_training_history(run_dir, {}).read_text())


def first_loss_of_iteration_one(run_dir: str) -> float:
    """Step 1's loss in the oldest training directory (iteration 1 trained first)."""
    histories = sorted(
        Path(run_dir, "training").glob("*/log_history.json"), key=lambda p: p.stat().st_mtime
    )
    return next(e["loss"] for e in json.loads(histories[0].read_text()) if "loss" in e)


def test_a_continued_iteration_still_stops_at_its_training_gates(tmp_path: Path) -> None:
    """With a gate at 75% of the longer schedule (e.g. step 9 of 12), iteration 2 continues
    from step 6, stops there for approval, then finishes."""
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import describe_run, open_service

    config = json.loads(_underfitting_config(tmp_path).read_text())
    config["hitl"]["training_checkpoints"] = [0.75]
    path = tmp_path / "gated.json"
    path.write_text(json.dumps(config))
    with open_service() as service:
        run = service.create_run(load_run_config(path))
        service.start(run.id)
        assert service.pending_interrupts(run.id)[0]["kind"] == "training_checkpoint"
        service.resume(run.id, decision={"decision": "approve"})  # iteration 1's gate
        service.resume(run.id, decision={"decision": "reject", "comment": "too weak"})
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_fixes"
        service.resume(run.id, decision={"decision": "approve"})
        gate = service.pending_interrupts(run.id)[0]
        assert gate["kind"] == "training_checkpoint"
        paused = service.state_values(run.id)["training"]
        target = paused["total_steps"]
        assert target > 6 and paused["resumed_from_step"] == 6
        assert paused["global_step"] == round(0.75 * target)
        service.resume(run.id, decision={"decision": "approve"})
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_evaluation"
        record = service.resume(run.id, decision={"decision": "approve"})
        assert record.status == "completed", record.error
        second = describe_run(service, run.id)["iterations"][1]
    assert second["route"] == "continue"
    assert second["training"]["global_step"] == target
    assert second["training"]["status"] == "completed"


def _reviewed_config(tmp_path: Path, **debugger: Any) -> Path:
    """Four steps, then the evaluation gate (the only gate before approve_fixes)."""
    config = quickstart_config()
    config["training"].update({"max_steps": 4, "save_steps": 2, "logging_steps": 1})
    config["evaluation"].update({"max_examples": 4, "max_new_tokens": 8})
    config["debugger"].update(debugger)
    config["hitl"].update(approve_plan=False, approve_data=False, training_checkpoints=[])
    path = tmp_path / "reviewed.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.slow
def test_reject_with_a_comment_waits_at_the_fixes_gate_and_an_edit_starts_iteration_two(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from llmfinetune_agent.cli import app

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    def show(run_id: str) -> dict[str, Any]:
        return json.loads(cli("runs", "show", run_id, "--json").stdout)

    started = cli("run", str(_reviewed_config(tmp_path)))
    assert started.exit_code == 3, started.output
    run_id = started.output.split("run ", 1)[1].split()[0]
    assert show(run_id)["pending_interrupt"]["kind"] == "approve_evaluation"

    rejected = cli("resume", run_id, "--reject", "--comment", "every age is 30")
    assert rejected.exit_code == 3, rejected.output  # waiting again, not cancelled
    info = show(run_id)
    pending = info["pending_interrupt"]
    assert info["status"] == "awaiting_approval" and pending["kind"] == "approve_fixes"
    assert pending["details"]["reviewer_comment"] == "every age is 30"
    assert '"every age is 30"' in pending["message"]

    edited = cli("resume", run_id, "--edit", '{"training": {"max_steps": 6}}', "--route", "retrain")
    assert edited.exit_code == 3, edited.output  # iteration 2 waits at its evaluation gate
    info = show(run_id)
    assert info["iteration"] == 2 and info["pending_interrupt"]["kind"] == "approve_evaluation"
    first, second = info["iterations"]
    assert first["rejected"] and first["reviewer_comment"] == "every age is 30"
    assert first["fix"]["training"]["max_steps"] == 6 and second["route"] == "retrain"
    assert info["training"]["global_step"] == 6
    row = next(
        line
        for line in (Path(info["run_dir"]) / "iterations.md").read_text().splitlines()
        if line.startswith("| 1 |")
    )
    assert row.endswith('rejected: "every age is 30" |'), row

    # Only a reject at approve_fixes ends the run, and a cancelled run has its own exit code.
    assert cli("resume", run_id, "--reject").exit_code == 3
    assert show(run_id)["pending_interrupt"]["kind"] == "approve_fixes"
    ended = cli("resume", run_id, "--reject", "--comment", "enough")
    assert ended.exit_code == 4, ended.output
    info = show(run_id)
    assert info["status"] == "cancelled" and "rejected at approve_fixes" in info["error"]


@pytest.mark.slow
def test_with_no_fix_to_apply_approve_is_refused_before_resume_cli_and_rest(
    tmp_path: Path,
) -> None:
    """The debugger off: nothing is proposed. Approving is refused (exit 2 / HTTP 422) and the
    run keeps waiting; the reviewer's own patch goes on to iteration 2."""
    import httpx
    from typer.testing import CliRunner

    from api.main import create_app
    from llmfinetune_agent.cli import app
    from llmfinetune_agent.config import load_run_config
    from llmfinetune_agent.execution import InvalidDecision, open_service
    from llmfinetune_agent.settings import Settings
    from tests.api.conftest import live_server

    with open_service() as service:
        run = service.create_run(load_run_config(_reviewed_config(tmp_path, enabled=False)))
        service.start(run.id)
        service.resume(run.id, decision={"decision": "reject", "comment": "wrong cities"})
        (pending,) = service.pending_interrupts(run.id)
        assert pending["kind"] == "approve_fixes" and pending["details"]["diagnoses"] == []
        assert "The debugger is disabled" in pending["message"]
        with pytest.raises(InvalidDecision, match="proposed no fix"):
            service.resume(run.id, decision={"decision": "approve"})

    refused = CliRunner().invoke(app, ["resume", run.id, "--approve"])
    assert refused.exit_code == 2 and "--edit" in refused.output, refused.output
    with live_server(create_app(Settings.from_env())) as url:
        answer = httpx.post(
            f"{url}/runs/{run.id}/interrupts/{pending['id']}", json={"decision": "approve"}
        )
    assert answer.status_code == 422 and "proposed no fix" in answer.text

    with open_service() as service:
        assert service.pending_interrupts(run.id)[0]["id"] == pending["id"]  # still waiting
        edit = {"decision": "edit", "edits": {"training": {"max_steps": 5}}}
        record = service.resume(run.id, decision=edit)
        assert record.status == "awaiting_approval"
        assert service.pending_interrupts(run.id)[0]["kind"] == "approve_evaluation"
        values = service.state_values(run.id)
    assert values["iteration"] == 2 and values["training"]["global_step"] == 5
