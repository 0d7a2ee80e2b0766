"""A DPO run and a reward-model run through the whole run graph, each approval answered, on
preference pairs (prompt / chosen / rejected) and the tiny Llama: the run completes, the trained
model is there and better at what its method optimises than the base, and the evaluation ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from phases.training import score
from tests.phases.training.training_test_data import mean_margin, preference_rows, write_jsonl

MAX_GATES = 8


def _config(model_dir: Path, data: Path, training: dict[str, Any]) -> dict[str, Any]:
    """A small preference run: no plan or data gate, one evaluation gate, no thresholds."""
    return {
        "name": f"{training['method']}-through-graph",
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": str(data), "format": "preference", "eval_fraction": 0.2},
        "training": {"batch_size": 8, "learning_rate": 1e-3, "save_steps": 50, **training},
        "evaluation": {"metrics": ["rougeL"], "max_examples": 4, "max_new_tokens": 8},
        "debugger": {"enabled": False},
        "hitl": {"approve_plan": False, "approve_data": False},
    }


def _run_approving_every_gate(config: dict[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """(final status, final graph state, the gates answered in order)."""
    with open_service() as service:
        run = service.create_run(parse_run_config(config))
        service.start(run.id)
        gates = []
        for _ in range(MAX_GATES):
            pending = service.pending_interrupts(run.id)
            if not pending:
                break
            gates.append(pending[0]["kind"])
            service.resume(run.id, decision={"decision": "approve", "comment": "ok"})
        record = service.require(run.id)
        return record.status, service.state_values(run.id), gates


def _win_rate(model_dir: Path, rows: list[dict]) -> float:
    """Share of pairs whose chosen reply the reward model scores above the rejected one."""
    score.cache_clear()
    wins = [
        score(model_dir, r["prompt"], r["chosen"]) > score(model_dir, r["prompt"], r["rejected"])
        for r in rows
    ]
    return sum(wins) / len(wins)


def test_dpo_run_through_the_graph_widens_the_margin(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(20)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = _config(tiny_model_dir, data, {"method": "dpo", "beta": 0.1, "max_steps": 4})

    status, state, gates = _run_approving_every_gate(config)

    assert status == "completed", state.get("error")
    assert gates[0] == "approve_evaluation"
    model_dir = Path(state["training"]["model_path"])
    assert (model_dir / "config.json").is_file()
    assert mean_margin(model_dir, rows) > mean_margin(tiny_model_dir, rows) + 5.0
    evaluation = state["evaluation"]
    assert set(evaluation["tuned"]) >= {"rougeL"} and set(evaluation["base"]) >= {"rougeL"}


def test_reward_run_through_the_graph_ranks_chosen_first(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = preference_rows(20)
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = _config(tiny_model_dir, data, {"method": "reward", "max_steps": 12})

    status, state, gates = _run_approving_every_gate(config)

    assert status == "completed", state.get("error")
    assert gates[0] == "approve_evaluation"
    model_dir = Path(state["training"]["model_path"])
    assert (model_dir / "config.json").is_file()
    base_dir = _untrained_reward_model(tiny_model_dir, tmp_path / "base-reward")
    assert _win_rate(model_dir, rows) > max(_win_rate(base_dir, rows), 0.5)
    # The evaluator judges the reward model as a scorer, on the held-out pairs: the ranking
    # it reports is the one the trained model makes, and it beats the untrained head's.
    assert state["artifact"]["kind"] == "reward_model"
    evaluation = state["evaluation"]
    tuned, base = evaluation["tuned"], evaluation["base"]
    assert set(tuned) == {"pairwise_accuracy", "mean_margin"} == set(base)
    eval_text = Path(state["data"]["eval_path"]).read_text()
    eval_rows = [json.loads(line) for line in eval_text.splitlines() if line.strip()]
    assert tuned["pairwise_accuracy"] == pytest.approx(_win_rate(model_dir, eval_rows))
    assert tuned["mean_margin"] > base["mean_margin"]
    card = (Path(state["final"]["model_path"]) / "README.md").read_text()
    assert "pairwise_accuracy" in card and "score(" in card


def _untrained_reward_model(model_dir: Path, out: Path) -> Path:
    """The base model with a fresh one-logit score head, as training starts from it."""
    from phases.training.model_access import load_reward_model

    torch.manual_seed(42)
    scorer, tokenizer = load_reward_model(str(model_dir), cache_dir=None)
    scorer.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
