"""Gate screens a person can read: each gate's real payload (from the gate node itself, run in a
one-node graph) rendered as a short summary with rounded numbers and one question, the default
answer, and the interactive prompt keeping an invalid edit's error on screen."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from typer.testing import CliRunner

from llmfinetune_agent.agents import gates
from llmfinetune_agent.cli.display import RunDisplay
from llmfinetune_agent.cli.gate_screens import default_answer, gate_screen, question
from llmfinetune_agent.cli.readable import fmt_duration, fmt_memory, fmt_number
from llmfinetune_agent.cli.run_cmd import _ask, _edit_check
from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.state import RunState
from phases.evaluation import EvaluationConfig
from phases.evaluation.acceptance import planned_rule
from phases.evaluation.results import ExampleRow
from phases.evaluation.thresholds import check_one

REPO = Path(__file__).resolve().parents[2]
ASSUMPTIONS = "Steps are exact.\nTime and memory are\norder-of-magnitude guides."
UNROUNDED = re.compile(r"\d\.\d{4,}")  # e.g. 16.308484448256


def quickstart_config() -> dict[str, Any]:
    raw = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    raw["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    raw["training"]["epochs"] = 1
    return RunConfig.model_validate(raw).model_dump(mode="json")


def data_state() -> dict[str, Any]:
    """`data` as the data agent leaves it for the quickstart (from a real tiny-model run)."""
    report = {
        "kind": "chat",
        "format": "messages",
        "rows_read": 240,
        "rows_kept": 238,
        "train_rows": 214,
        "eval_rows": 24,
        "dropped_by_reason": {"empty_field": 0, "too_long": 2},
        "rows_dropped": 2,
        "duplicates_removed": 1,
        "overlaps_eval": 0,
        "max_length": 128,
        "token_stats": {"min": 35, "mean": 44.521739130434, "p50": 44.0, "p95": 54.0, "max": 60},
        "warnings": [],
    }
    turn = [
        {"role": "user", "content": "Meet Tariq:\n26 years old, living in Zurich."},
        {"role": "assistant", "content": '{"name": "Tariq", "age": 26, "city": "Zurich"}'},
    ]
    return {
        "train_rows": 214,
        "eval_rows": 24,
        "kind": "chat",
        "sample": [{"messages": turn}] * 3,
        "report": report,
    }


def evaluation_state(passed: bool) -> dict[str, Any]:
    """`evaluation` as the evaluator leaves it: metrics, threshold checks and example rows."""
    tuned = {"rougeL": 0.3521241830065358, "exact_match": 0.0, "perplexity": 9.83722576100005}
    base = {"rougeL": 0.0, "exact_match": 0.0, "perplexity": 2254.4008484130018}
    checks = [
        check_one("rougeL", "above_base", 0.1, tuned["rougeL"], base["rougeL"]),
        check_one("exact_match", "min", 0.0 if passed else 0.8, 0.0, 0.0),
    ]
    rows = [
        ("worst", "Ana is 30 and lives in Rome.", '{"name": "Ana"}', "", '{"name": "age":\n"c', 0),
        ("worst", "second worst", "x", "", "y", 0.1),
        ("best", "Bo (41) is based in Oslo.", '{"name": "Bo"}', "Bo", '{"name": "Bo"}', 0.91234),
    ]
    examples = [
        ExampleRow(
            which=which, row=i, input=text, reference=ref, base_output=b, tuned_output=t, score=s
        )
        for i, (which, text, ref, b, t, s) in enumerate(rows)
    ]
    return {
        "base": base,
        "tuned": tuned,
        "deltas": {k: tuned[k] - base[k] for k in tuned},
        "thresholds": {},
        "checks": [c.model_dump() for c in checks],
        "passed": all(c.passed for c in checks),
        "examples": [e.model_dump() for e in examples],
        "report_path": "/runs/r1/evaluation/evaluation_report.md",
    }


DIAGNOSES = [
    {
        "index": 0,
        "kind": "underfitting",
        "severity": "error",
        "summary": "The loss was still falling fast\nwhen training stopped (7.01 -> 4.85).",
        "evidence": {"losses": [7.0112556457519535, 4.847625732421875]},
        "patch": {"training": {"epochs": 3}},
        "rationale": "Train longer.",
        "expected_effect": "Lower loss.",
        "route": None,
    },
    {
        "index": 1,
        "kind": "never_stops",
        "severity": "warning",
        "summary": "4 of 4 generations ran to max_new_tokens (32) without an end token.",
        "evidence": {},
        "patch": None,
        "rationale": "Fix the chat template.",
        "expected_effect": "Answers end.",
        "route": None,
    },
]


def post_training_state() -> dict[str, Any]:
    """`post_training` as the post_training node leaves it (numbers from a tiny-model run)."""
    common = {"relation": "quantized", "parent": 0, "parameters": {}}
    rows = [
        {
            "index": 0,
            "name": "tuned",
            "kind": "model",
            "relation": "finetune",
            "parent": None,
            "bytes": 3150424,
            "bits_per_weight": 32.022,
            "tokens_per_second": 11.4812,
            "metrics": {"rougeL": 0.3521241830065358},
            "verdict": "pass",
            "alias": "candidate",
            "reason": "the accepted model: the reference every candidate is gated against",
        },
        {
            **common,
            "index": 1,
            "name": "int8",
            "kind": "quantized",
            "bytes": 1602824,
            "bits_per_weight": 16.292,
            "tokens_per_second": 14.1523,
            "kl": 3.1e-06,
            "top1": 1.0,
            "metrics": {"rougeL": 0.3521241830065358},
            "retention": {"rougeL": 1.0},
            "verdict": "pass",
            "alias": "champion",
            "reason": "retention >= 100.0% (needs 99%)",
        },
        {
            **common,
            "index": 2,
            "name": "gguf:q4_k_m",
            "kind": "gguf",
            "bytes": 706784,
            "bits_per_weight": 7.184,
            "tokens_per_second": 20.7812,
            "kl": 0.0411234,
            "top1": 0.9123,
            "metrics": {"rougeL": 0.3012345},
            "retention": {"rougeL": 0.855},
            "verdict": "fail",
            "alias": "rolled_back",
            "reason": "retention rougeL 85.5% < 95%; KL 0.041 > 0.035",
        },
    ]
    return {"candidates": rows, "champion": 1, "gated_metrics": ["rougeL"], "table_path": "/t.json"}


def gate_payload(node: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The payload `node` sends to `interrupt()`, from a one-node graph."""
    graph = StateGraph(RunState)
    graph.add_node("gate", node)
    graph.add_edge(START, "gate")
    graph.add_edge("gate", END)
    app = graph.compile(checkpointer=InMemorySaver())
    result = app.invoke(state, {"configurable": {"thread_id": "t"}})
    (pending,) = result["__interrupt__"]
    return {"id": pending.id, **pending.value}


def base_state(tmp_path: Path) -> dict[str, Any]:
    return {"run_id": "r1", "run_dir": str(tmp_path), "config": quickstart_config(), "iteration": 1}


def payloads(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """One real payload per gate kind."""
    state = base_state(tmp_path)
    plan = {
        "total_steps": 27,
        "steps_per_epoch": 27,
        "tokens": 9616,
        "seconds": 80.2706208645120003,
        "memory_gb": 1.234,
        "assumptions": ASSUMPTIONS,
        "acceptance": planned_rule(EvaluationConfig(metrics=["exact_match", "rougeL"])),
    }
    training = {
        "status": "paused",
        "fraction": 0.5,
        "global_step": 14,
        "total_steps": 27,
        "train_loss": 4.847625732421875,
        "recent_losses": [{"step": 5, "loss": 7.0112556457519535}, {"step": 10, "loss": 4.8476}],
        "eta_seconds": 16.308484448256,
        "checkpoint_path": str(tmp_path / "checkpoint-14"),
    }
    rejected = {"approve_evaluation": False}
    reject = {"gate": "approve_evaluation", "decision": "reject", "comment": "too weak"}
    return {
        "approve_plan": gate_payload(
            gates.gate_plan, {**state, "data": data_state(), "plan": plan}
        ),
        "approve_data": gate_payload(gates.gate_data, {**state, "data": data_state()}),
        "training_checkpoint": gate_payload(gates.gate_training, {**state, "training": training}),
        "approve_evaluation": gate_payload(
            gates.gate_evaluation, {**state, "evaluation": evaluation_state(passed=False)}
        ),
        "approve_fixes": gate_payload(
            gates.gate_fixes,
            {
                **state,
                "training": {**training, "status": "completed", "fraction": None},
                "evaluation": evaluation_state(passed=False),
                "approved": rejected,
                "decisions": [{**reject, "iteration": 1, "patch": None, "time": "t"}],
                "diagnoses": DIAGNOSES,
            },
        ),
        "approve_release": gate_payload(
            gates.gate_release, {**state, "post_training": post_training_state()}
        ),
    }


def screen_text(pending: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(gate_screen(pending, config=config))
    return out.getvalue()


@pytest.fixture
def real(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return payloads(tmp_path)


def test_every_gate_is_a_short_summary_with_rounded_numbers(real: dict[str, Any]) -> None:
    assert {p["kind"] for p in real.values()} == set(real)
    for kind, pending in real.items():
        text = screen_text(pending, config=quickstart_config())
        assert not UNROUNDED.search(text), (kind, text)
        assert "\\n" not in text and "{'" not in text, (kind, text)
        assert question(pending) not in text, (kind, text)  # the prompt asks it, once
        assert len(text.splitlines()) <= 20, (kind, text)


def test_the_plan_gate_shows_steps_time_and_memory_for_reading(real: dict[str, Any]) -> None:
    text = screen_text(real["approve_plan"], config=quickstart_config())
    assert "27 steps (27 per epoch)" in text
    assert "about 1 min 20 s" in text and "1.2 GB memory" in text
    assert "mean 44.5" in text and "2 dropped (too_long 2)" in text
    assert "1 epoch, learning rate 0.003, batch 8" in text
    assert "order-of-magnitude guides." not in text  # the payload's long notes stay in --json
    assert text.count("Plan: SFT on builtin:tiny-llama") == 1
    assert "accepted if" in text and "exact_match (the first listed metric)" in text
    assert 8 <= len(text.splitlines()) <= 20


def test_the_plan_gate_warns_of_a_precision_this_cpu_runs_slowly(tmp_path: Path) -> None:
    state = base_state(tmp_path)
    warning = "training.precision is bfloat16 but this CPU has no bfloat16 instructions"
    plan = {
        "total_steps": 27,
        "steps_per_epoch": 27,
        "warnings": [warning],
        "precision": "bfloat16",
    }
    pending = gate_payload(gates.gate_plan, {**state, "data": data_state(), "plan": plan})
    assert f"Warning: {warning}. Approve?" in pending["message"]
    text = screen_text(pending, config=quickstart_config())
    assert re.search(r"warning\s+training\.precision is bfloat16", text), text
    assert re.search(r"computes in\s+bfloat16", text), text


def test_other_gates_show_their_counts_and_losses(real: dict[str, Any]) -> None:
    data = screen_text(real["approve_data"])
    assert re.search(r"214\s+24\s+240\s+2\s+1\s+0", data)
    assert "Meet Tariq: ⏎ 26 years old" in data  # a line break in a sample stays on one line
    training = screen_text(real["training_checkpoint"])
    assert "14 of 27" in training and "4.85" in training and "5: 7.01 → 10: 4.85" in training
    assert "16 s" in training
    fixes = screen_text(real["approve_fixes"])
    assert '#0 underfitting (error) · fix: {"training": {"epochs": 3}}' in fixes
    assert "#1 never_stops (warning) · no config change proposed" in fixes
    assert "too weak" in fixes


def test_the_release_gate_shows_the_candidates_table(real: dict[str, Any]) -> None:
    pending = real["approve_release"]
    assert pending["message"].startswith(
        "Post-training made 2 candidate(s): 1 passed, 1 rolled back"
    )
    assert "champion: int8" in pending["message"] and default_answer(pending) == "approve"
    text = screen_text(pending)
    assert re.search(
        r"1\s+int8\s+1.6 MB\s+16.3\s+14.2\s+0.352\s+100.0%\s+3.1e-06\s+1\s+✓ champion", text
    )
    assert "✓ champion" in text and "✗ rolled_back" in text and "85.5%" in text
    assert "#2 gguf:q4_k_m rolled back: retention rougeL 85.5% < 95%; KL 0.041 > 0.035" in text


def test_a_missed_evaluation_says_so_first_and_defaults_to_reject(real: dict[str, Any]) -> None:
    pending = real["approve_evaluation"]
    text = screen_text(pending)
    lines = text.splitlines()
    assert lines[1].startswith("✗ FAILED: exact_match 0.00 < 0.80 required")
    exact = next(line for line in lines if line.startswith("exact_match"))
    assert exact.split()[:5] == ["exact_match", "0", "0", "0", "≥"] and "✗ missed" in exact
    rouge = next(line for line in lines if line.startswith("rougeL"))
    assert rouge.split()[:6] == ["rougeL", "0", "0.352", "+0.352", "≥", "0.1"]
    assert "(base + 0.1)" in rouge and "✓ met" in rouge
    assert "2,254" in text and "-2,245" in text
    assert default_answer(pending) == "reject"
    assert default_answer({**pending, "default": "approve"}) == "approve"  # the payload decides
    without = {k: v for k, v in pending.items() if k != "default"}
    assert default_answer(without) == "reject"  # details.passed is false
    passed = {**without, "details": {**without["details"], "passed": True}}
    assert default_answer(passed) == "approve"


def test_the_evaluation_gate_shows_one_example_of_each_kind(real: dict[str, Any]) -> None:
    text = screen_text(real["approve_evaluation"])
    assert "worst (0)" in text and "best (0.912)" in text and "second worst" not in text
    assert "Ana is 30 and lives in Rome." in text
    assert '{"name": "age": ⏎ "c' in text  # the tuned answer's line break, on one line
    assert "Bo (41) is based in Oslo." in text
    assert re.search(r"base +\(empty\)", text)  # the base model said nothing


def test_thresholds_without_checks_still_say_what_was_missed(real: dict[str, Any]) -> None:
    pending = real["approve_evaluation"]
    older = {
        "rougeL": {"threshold": 0.6, "value": 0.3521, "higher_is_better": True, "passed": False}
    }
    details = {**pending["details"], "checks": [], "thresholds": older}
    text = screen_text({**pending, "details": details})
    assert "missed: rougeL 0.352 < 0.6 required" in text


def test_an_invalid_edit_keeps_its_error_above_the_prompt(real: dict[str, Any]) -> None:
    """At the prompt: a bad key, then an edit that is not a valid config, then a good one.
    Each error is the line right above the prompt asked again; the screen is not reprinted."""
    pending = real["approve_plan"]
    answers = "x\ne\n{bad\n" + '{"training": {"learning_rate": -1}}\n'
    answers += '{"training": {"epochs": 2}}\ntwo epochs\n'
    with CliRunner().isolation(input=answers) as streams:
        decision = _ask(RunDisplay(), pending, check=_edit_check(quickstart_config()))
        shown = streams[0].getvalue().decode()  # stdout: prompts, answers and errors
    assert decision == {
        "decision": "edit",
        "edits": {"training": {"epochs": 2}},
        "comment": "two epochs",
    }
    lines = shown.splitlines()
    patch_prompt = 'config patch as JSON, e.g. {"training": {"learning_rate": 0.001}}: '
    error_at = next(i for i, line in enumerate(lines) if "training.learning_rate" in line)
    assert lines[error_at].startswith("error: the edit is not a valid config")
    assert lines[error_at + 1].startswith(patch_prompt)  # asked again, right under the error
    assert lines[0].startswith("Approve? [a]pprove / [r]eject / [e]dit [approve]: ")
    assert lines[1].startswith("error: answer [a]pprove / [r]eject / [e]dit")
    assert "not valid JSON" in shown
    assert shown.count("Approve?") == 2 and "Plan: SFT" not in shown


def test_readable_values() -> None:
    assert [fmt_number(v) for v in (16.308484448256, 0.3521, 2254.4, 44.0, 9616, None)] == [
        "16.3",
        "0.352",
        "2,254",
        "44",
        "9,616",
        "—",
    ]
    assert [fmt_duration(s) for s in (0.2, 2.27, 80, 3600 + 300, None)] == [
        "< 1 s",
        "2 s",
        "1 min 20 s",
        "1 h 5 min",
        "unknown",
    ]
    assert [fmt_memory(g) for g in (0.013, 1.234, 24.4)] == ["13 MB", "1.2 GB", "24 GB"]


def test_a_run_asks_again_under_the_error_and_shows_the_revised_plan(tmp_path: Path) -> None:
    """A real run at its plan gate: an edit the runner refuses is explained above a new prompt
    (no second screen); a valid edit prints the revised plan, then the run goes on."""
    from llmfinetune_agent.cli.run_cmd import _answer
    from llmfinetune_agent.execution import open_service

    raw = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    raw["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    raw["training"].update(epochs=1, save_steps=2)
    raw["hitl"]["training_checkpoints"] = []
    with open_service() as service:
        record = service.create_run(RunConfig.model_validate(raw))
        record = service.start(record.id)
        assert record.pending_interrupt["kind"] == "approve_plan"
        steps = record.pending_interrupt["details"]["estimate"]["total_steps"]
        refused = {"decision": "edit", "edits": {"training": {"batch_size": 0}}, "comment": ""}
        answers = 'e\n{"training": {"epochs": 3}}\nthree epochs\n'
        with CliRunner().isolation(input=answers) as streams:
            record = _answer(service, record, RunDisplay(), refused, ask_again=True)
            shown = streams[0].getvalue().decode()
    lines = shown.splitlines()
    error_at = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    assert "training.batch_size" in lines[error_at] and "still waiting" in lines[error_at]
    assert lines[error_at + 1].startswith("Approve? [a]pprove / [r]eject / [e]dit")
    assert "⏸" not in shown  # the screen is not printed again
    revised = next(line for line in lines if line.startswith("revised plan:"))
    assert revised.startswith(f"revised plan: {3 * steps} steps ({steps} per epoch)")
    assert record.pending_interrupt["kind"] == "approve_data"


def test_an_rl_run_shows_its_rewards_at_the_plan_and_training_gates(tmp_path: Path) -> None:
    from llmfinetune_agent.config import parse_run_config

    raw = json.loads((Path(__file__).parents[2] / "configs" / "grpo-quickstart.json").read_text())
    raw["data"] = {"train": "t.jsonl"}
    config = parse_run_config(raw).model_dump(mode="json")
    state = {**base_state(tmp_path), "config": config}
    plan = gate_payload(
        gates.gate_plan, {**state, "data": data_state(), "plan": {"total_steps": 40}}
    )
    assert (
        "Rewards: json_valid x0.5, exact_match x1, length x0.25. 4 completions per prompt of up to "
        "32 tokens, no vLLM" in (plan["message"])
    )
    assert [r["function"] for r in plan["details"]["rewards"]["functions"]] == [
        "json_valid",
        "exact_match",
        "length",
    ]
    guard = {
        "kind": "completions_clipped",
        "step": 20,
        "action": "flag",
        "message": "Reward guard flagged the run at step 20.",
    }
    training = {
        "status": "paused",
        "fraction": 0.5,
        "global_step": 20,
        "total_steps": 40,
        "train_loss": 0.01,
        "recent_losses": [],
        "recent_rewards": [{"step": 1, "reward": 0.25}, {"step": 20, "reward": 0.875}],
        "sample_completions": [{"step": 20, "completion": '{"name": "Ann"}', "reward": 1.5}],
        "reward_guard": guard,
    }
    pending = gate_payload(gates.gate_training, {**state, "training": training})
    assert pending["message"] == (
        "Training is 50% complete, mean reward 0.875. Reward guard flagged the run at step 20. Continue?"
    )
    text = screen_text(pending)
    assert "1: 0.25 → 20: 0.875" in text and '1.5 ← \'{"name": "Ann"}\'' in text


def test_the_data_gate_shows_generation_rates_and_new_values(tmp_path: Path) -> None:
    from llmfinetune_agent.agents.data_agent import _STATE_KEYS
    from phases.synthesis import DataGenerationConfig, generate_examples

    train = REPO / "configs" / "data" / "quickstart" / "train.jsonl"
    seeds = [json.loads(line) for line in train.read_text().splitlines()[:6]]
    new = {"name": "Zanele", "age": 91, "city": "Windhoek"}
    reply = (
        f"Input: {new['name']} ({new['age']}) lives in {new['city']}.\nOutput: {json.dumps(new)}"
    )
    _, report = generate_examples(
        DataGenerationConfig(enabled=True, num_examples=1, batch_size=2),
        task="People to JSON.",
        kind="chat",
        seeds=seeds,
        complete=lambda prompts, _t: ["I cannot.", reply][: len(prompts)],
        generator_name="replay",
    )
    generation = {k: report.to_dict()[k] for k in _STATE_KEYS}
    state = {**base_state(tmp_path), "data": {**data_state(), "generation": generation}}
    pending = gate_payload(gates.gate_data, state)
    assert pending["summary"]["keep_rate"] == 0.5
    assert pending["summary"]["new_values"] == {"age": 1, "city": 1, "name": 1}
    assert "keep rate 50%" in pending["message"]
    text = screen_text(pending)
    assert "1 kept of 2 · keep rate 0.5 · near duplicates 0" in text
    assert re.search(r"city +free text · 1 distinct, 1 not in the seeds \(Windhoek\)", text)
