"""The RL diagnoses on hand-built evidence: zero reward spread, clipped completions and reward
hacking are named, with patches that validate against the run config."""

from typing import Any

from llmfinetune_agent.config import apply_patch, parse_run_config
from phases.diagnosis import diagnose_run

CONFIG = parse_run_config(
    {
        "data": {"train": "t.jsonl"},
        "training": {
            "method": "grpo",
            "batch_size": 4,
            "rewards": [{"function": "exact_match"}],
            "learning_rate": 1e-4,
        },
    }
)


def _kinds(**evidence: Any) -> dict[str, Any]:
    return {d.kind: d for d in diagnose_run(config=CONFIG, **evidence)}


def _history(rewards: list[float], zero_std: float = 0.0, clipped: float = 0.0) -> list[dict]:
    return [
        {
            "step": i + 1,
            "loss": 0.01,
            "reward": r,
            "frac_reward_zero_std": zero_std,
            "completions/clipped_ratio": clipped,
        }
        for i, r in enumerate(rewards)
    ]


def test_zero_spread_names_no_gradient_and_asks_for_more_varied_groups() -> None:
    guard = {"kind": "zero_reward_spread", "step": 6, "action": "stop", "message": "Guard fired."}
    found = _kinds(log_history=_history([0.0] * 6, zero_std=1.0), training={"reward_guard": guard})
    diagnosis = found["zero_reward_spread"]
    assert "no spread" in diagnosis.summary and "Guard fired." in diagnosis.summary
    assert diagnosis.evidence["mean_frac_reward_zero_std"] == 1.0
    patched = apply_patch(CONFIG, diagnosis.patch).training
    assert (patched.num_generations, patched.batch_size, patched.temperature) == (8, 8, 1.3)
    assert [r.function for r in patched.rewards] == ["exact_match", "json_valid"]


def test_clipped_completions_ask_for_a_longer_cap() -> None:
    found = _kinds(log_history=_history([0.2, 0.3, 0.2, 0.3], zero_std=0.2, clipped=1.0))
    assert set(found) >= {"completions_clipped"} and "zero_reward_spread" not in found
    patched = apply_patch(CONFIG, found["completions_clipped"].patch)
    assert patched.training.max_completion_length == 64


def test_reward_up_eval_down_is_reward_hacking() -> None:
    evaluation = {"base": {"exact_match": 0.4}, "tuned": {"exact_match": 0.1}}
    history = _history([0.1, 0.1, 0.3, 0.5, 0.8, 0.9])
    diagnosis = _kinds(log_history=history, evaluation=evaluation)["reward_hacking"]
    assert diagnosis.evidence["metric"] == "exact_match"
    assert diagnosis.evidence["reward_last_fifth"] > diagnosis.evidence["reward_first_fifth"]
    assert apply_patch(CONFIG, diagnosis.patch).training.learning_rate == 5e-5
    better = {"base": {"exact_match": 0.4}, "tuned": {"exact_match": 0.6}}
    assert "reward_hacking" not in _kinds(log_history=history, evaluation=better)


def test_sft_runs_get_no_reward_diagnoses() -> None:
    sft = parse_run_config({"data": {"train": "t.jsonl"}})
    found = diagnose_run(config=sft, log_history=_history([0.0] * 6, zero_std=1.0, clipped=1.0))
    assert not {d.kind for d in found} & {"zero_reward_spread", "completions_clipped"}
