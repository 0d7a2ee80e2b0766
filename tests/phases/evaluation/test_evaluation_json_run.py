"""JSON eval data through compare_models on the tiny model, and what the evaluation gate shows.

The untrained tiny model answers no JSON, so a threshold on field accuracy over the base fails;
the gate then says FAILED first, carries the checks and example rows, and defaults to reject.
"""

import json
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from llmfinetune_agent.agents.gates import gate_evaluation
from llmfinetune_agent.state import RunState
from phases.evaluation import EvaluationConfig, compare_models

PEOPLE = [("Ann", 31, "Oslo"), ("Bob", 45, "Lima"), ("Cyd", 22, "Rome"), ("Dee", 38, "Kyiv")]


def _json_chat_eval(path: Path) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"{name} is {age} and lives in {city}."},
                {
                    "role": "assistant",
                    "content": json.dumps({"name": name, "age": age, "city": city}),
                },
            ]
        }
        for name, age, city in PEOPLE
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _gate_payload(evaluation: dict) -> dict:
    """The interrupt the evaluation gate raises for this evaluation summary."""
    graph = StateGraph(RunState)
    graph.add_node("gate_evaluation", gate_evaluation)
    graph.add_edge(START, "gate_evaluation")
    graph.add_edge("gate_evaluation", END)
    app = graph.compile(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    app.invoke({"evaluation": evaluation, "config": {}}, thread)
    (pending,) = app.get_state(thread).tasks[0].interrupts
    return pending.value


def test_json_references_get_json_metrics_checks_examples_and_a_reject_default(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = EvaluationConfig(
        metrics=["rougeL"],
        thresholds={"json_field_accuracy": {"above_base": 0.5}},
        max_new_tokens=8,
        batch_size=4,
    )
    report = compare_models(
        config,
        base=str(tiny_model_dir),
        tuned=str(tiny_model_dir),
        eval_path=_json_chat_eval(tmp_path / "eval.jsonl"),
        output_dir=tmp_path / "report",
        cache_dir=tmp_path / "cache",
    )
    assert list(report.tuned.metrics) == [
        "rougeL",
        "exact_match",
        "json_valid",
        "json_field_accuracy",
    ]
    assert any("Added to the configured metrics" in note for note in report.notes)
    assert report.tuned.row_metric == "json_field_accuracy"
    (check,) = report.checks
    assert (check.metric, check.rule, check.passed) == ("json_field_accuracy", "above_base", False)
    assert not report.passed
    assert {e.which for e in report.examples} == {"worst", "best"}  # 4 rows: none left to draw
    for example in report.examples:
        row = report.tuned.predictions[example.row]
        assert example.score == row.scores["json_field_accuracy"]
        assert example.base_output == report.base.predictions[example.row].got

    payload = _gate_payload(report.summary())
    assert payload["default"] == "reject"
    assert payload["message"].startswith("FAILED: json_field_accuracy 0.00 < 0.50 required")
    details = payload["details"]
    assert details["checks"][0]["metric"] == "json_field_accuracy"
    assert set(details["examples"][0]) >= {
        "which",
        "input",
        "reference",
        "base_output",
        "tuned_output",
        "score",
    }

    passing = {**report.summary(), "passed": True, "checks": []}
    assert _gate_payload(passing)["default"] == "approve"
