"""RLHF through the run graph: a reward run on preference pairs registers a reward model, and a
GRPO run whose reward is that model (named by its registry id) raises the reward it gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmfinetune_agent.config import parse_run_config
from llmfinetune_agent.execution import open_service
from tests.llmfinetune_agent.test_methods_through_graph import _config, _run_approving_every_gate
from tests.phases.training.training_test_data import preference_rows, write_jsonl

WORDS = ["Alice", "Paris", "was", "the", "good", "Family", "city", "Lima", "house", "Madrid"]


def _number_pairs(n: int = 20) -> list[dict]:
    """Numbers preferred over words: a preference the tiny model's random text varies in (its
    completions mix digits and word pieces), so the reward model's scores have spread."""
    rng = random.Random(0)
    return [
        {
            "prompt": f"Question {i}: give numbers.",
            "chosen": " " + " ".join(str(rng.randint(0, 9999)) for _ in range(3)),
            "rejected": " " + " ".join(rng.choice(WORDS) for _ in range(3)),
        }
        for i in range(n)
    ]


def _rl_run(model_dir: Path, data: Path, training: dict) -> dict:
    """An RL run of a few short completions through the graph, every gate approved; its final
    state, after checking it completed and its first gate was the evaluation's."""
    config = _config(
        model_dir,
        data,
        {
            "num_generations": 4,
            "max_completion_length": 6,
            "logging_steps": 1,
            "guards": {"action": "flag"},
            **training,
        },
    )
    config["data"]["format"] = "auto"
    status, state, gates = _run_approving_every_gate(config)
    assert status == "completed", state.get("error")
    assert gates[0] == "approve_evaluation"
    return state


@pytest.mark.slow
def test_reward_model_then_grpo_on_it_raises_its_reward(tiny_model_dir: Path, tmp_path: Path):
    rows = _number_pairs()
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    # float32 on every CPU: a random tiny model's 12-step reward curve is a weak signal, and
    # under bfloat16 autocast (auto's choice on an AMX CPU) it once fell (first fifth 2.33, last
    # 2.15) in a suite run while ten runs alone rose. RL in bfloat16 is test_rl_training's.
    exact = {"precision": "float32"}
    status, state, _ = _run_approving_every_gate(
        _config(tiny_model_dir, pairs, {"method": "reward", "max_steps": 12, **exact})
    )
    assert status == "completed", state.get("error")
    reward_model_id = state["final"]["model_id"]

    prompts = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows]
    data = write_jsonl(tmp_path / "prompts.jsonl", prompts)
    state = _rl_run(
        tiny_model_dir,
        data,
        {
            "method": "grpo",
            "rewards": [{"function": "reward_model", "model": f"model:{reward_model_id}"}],
            "lora": None,
            "max_steps": 12,
            "learning_rate": 1e-2,
            **exact,
        },
    )
    curve = [point["reward"] for point in state["training"]["recent_rewards"]]
    assert len(curve) == 12
    fifth = len(curve) // 5
    assert sum(curve[-fifth:]) / fifth > sum(curve[:fifth]) / fifth, curve
    assert state["training"]["sample_completions"][0]["rewards"].keys() == {"reward_model"}


def _error_before_training(
    model_dir: Path, tmp_path: Path, training: dict, metrics: list[str] | None = None
) -> str:
    """Start a run on prompt rows; it must fail before a plan or training: its error."""
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in preference_rows(10)]
    config = _config(model_dir, write_jsonl(tmp_path / "prompts.jsonl", rows), training)
    config["data"]["format"] = "auto"
    config["evaluation"]["metrics"] = metrics or config["evaluation"]["metrics"]
    with open_service() as service:
        run = service.create_run(parse_run_config(config))
        service.start(run.id)
        record, state = service.require(run.id), service.state_values(run.id)
    assert (record.status, state.get("plan"), state.get("training")) == ("failed", None, None)
    return record.error


def test_a_reward_outside_the_allow_list_fails_the_run_before_training(
    tiny_model_dir: Path, tmp_path: Path
):
    grpo = {"method": "grpo", "rewards": [{"function": "os.path:exists"}], "max_steps": 2}
    error = _error_before_training(tiny_model_dir, tmp_path, grpo)
    assert (
        "training.rewards[0].function 'os.path:exists': module 'os.path' is not allow-listed"
        in (error)
    )
    assert "FINETUNE_AGENT_REWARD_MODULES" in error


def test_a_metric_outside_the_allow_list_fails_the_run_before_training(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FINETUNE_AGENT_METRIC_MODULES", "my_metrics")
    sft = {"method": "sft", "max_steps": 2}
    error = _error_before_training(tiny_model_dir, tmp_path, sft, ["rougeL", "os:getcwd"])
    assert "user metric 'os:getcwd': module 'os' is not allow-listed (my_metrics)" in error
    assert "FINETUNE_AGENT_METRIC_MODULES" in error


def test_rloo_run_through_the_graph_trains_logs_rewards_and_is_evaluated(
    tiny_model_dir: Path, tmp_path: Path
):
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in preference_rows(10)]
    data = write_jsonl(tmp_path / "prompts.jsonl", rows)
    rloo = {
        "method": "rloo",
        "rewards": [{"function": "length", "min_chars": 1, "max_chars": 12}],
        "max_steps": 3,
    }
    state = _rl_run(tiny_model_dir, data, rloo)
    training = state["training"]
    assert training["global_step"] == 3
    args = json.loads(Path(training["args_path"]).read_text())
    assert "normalize_advantages" in args and "loss_type" not in args  # RLOO's config, not GRPO's
    assert len(training["recent_rewards"]) == 3
    assert all(0.0 <= point["reward"] <= 1.0 for point in training["recent_rewards"])
    assert training["sample_completions"][0]["rewards"].keys() == {"length"}
    assert (Path(training["model_path"]) / "adapter_config.json").is_file()  # LoRA by default
    assert set(state["evaluation"]["tuned"]) >= {"rougeL"}
