"""Preference-run diagnoses on TRL-shaped log histories (data, no model): early saturation,
likelihood displacement, answers that do not end; each with its evidence and a patch that
validates against the run config."""

from typing import Any

from llmfinetune_agent.config import apply_patch, parse_run_config
from phases.diagnosis import diagnose_run


def _config(**training: Any):
    return parse_run_config(
        {
            "data": {"train": "t.jsonl"},
            "training": {"method": "dpo", "learning_rate": 2e-4, "lora": {"r": 16}, **training},
        }
    )


def _dpo_logs(margins: list[float], chosen: list[float], rejected: list[float]) -> list[dict]:
    """What TRL's DPOTrainer logs every 5 steps (loss = -log sigmoid(margin))."""
    import math

    return [
        {
            "step": 5 * (i + 1),
            "loss": math.log1p(math.exp(-m)),
            "rewards/margins": m,
            "rewards/accuracies": 1.0 if m > 1 else 0.6,
            "logps/chosen": c,
            "logps/rejected": r,
        }
        for i, (m, c, r) in enumerate(zip(margins, chosen, rejected, strict=True))
    ]


# The issue's run: margin 9.9 by step 40 of 80 and on, chosen log-prob rising, rejected crashing.
ISSUE_RUN = _dpo_logs(
    margins=[
        0.8,
        2.5,
        4.1,
        5.6,
        7.2,
        8.4,
        9.9,
        9.9,
        10.2,
        10.4,
        10.5,
        10.6,
        10.6,
        10.6,
        10.6,
        10.6,
    ],
    chosen=[-18.8, -16.0, -14.1, -12.5, -11.0, -10.1, -9.5, -9.2] + [-8.8] * 8,
    rejected=[-38.5, -45.0, -60.2, -75.0, -88.3, -99.1, -110.0, -118.4] + [-129.3] * 8,
)
RUN_ON = [
    {"got": '{"name": "Yusuf", "age": 79, "city": "Tunis"},\nLiving in London, England, Yusuf'},
    {"got": '{"name": "Ann", "age": 31, "city": "Oslo"} Ann is 31.'},
    {"got": '{"name": "Bob", "age": 45, "city": "Lima"}'},
]


def _kinds(config, **evidence: Any) -> dict[str, Any]:
    return {d.kind: d for d in diagnose_run(config=config, **evidence)}


def test_a_margin_saturated_by_mid_run_turns_the_sft_term_on() -> None:
    config = _config(rpo_alpha=0)
    found = _kinds(config, log_history=ISSUE_RUN)
    saturated = found["preference_saturated"]
    assert saturated.evidence["saturated_at_step"] == 20 and saturated.evidence["last_step"] == 80
    assert saturated.patch == {"training": {"rpo_alpha": 1.0}}
    assert apply_patch(config, saturated.patch).training.rpo_alpha == 1.0
    assert "likelihood_displacement" not in found  # the chosen replies gained likelihood


def test_with_the_sft_term_on_a_saturated_run_stops_earlier_at_a_lower_rate() -> None:
    config = _config(rpo_alpha=1.0)
    saturated = _kinds(config, log_history=ISSUE_RUN)["preference_saturated"]
    assert saturated.patch == {"training": {"max_steps": 20, "learning_rate": 1e-4}}
    patched = apply_patch(config, saturated.patch).training
    assert (patched.max_steps, patched.learning_rate) == (20, 1e-4)


def test_a_margin_that_saturates_late_or_an_sft_run_is_not_flagged() -> None:
    late = _dpo_logs([0.5, 1.0, 2.0, 3.0, 4.0, 5.5], [-18.0] * 6, [-30.0] * 6)
    assert "preference_saturated" not in _kinds(_config(), log_history=late)
    sft = parse_run_config({"data": {"train": "t.jsonl"}})
    assert "preference_saturated" not in _kinds(sft, log_history=ISSUE_RUN)


def test_falling_chosen_log_probs_are_likelihood_displacement() -> None:
    history = _dpo_logs(
        margins=[0.5, 1.5, 2.5, 3.0, 3.5, 4.0],
        chosen=[-18.8, -20.5, -23.0, -26.4, -29.0, -31.2],
        rejected=[-38.5, -50.0, -62.0, -75.0, -88.0, -99.0],
    )
    config = _config(rpo_alpha=0)
    found = _kinds(config, log_history=history)
    displaced = found["likelihood_displacement"]
    assert displaced.evidence["chosen_logps_first"] == -18.8
    assert displaced.evidence["chosen_logps_last"] < -28
    assert displaced.severity == "error"  # fell by more than 6 nats
    assert displaced.patch == {"training": {"rpo_alpha": 1.0, "learning_rate": 1e-4}}
    on = _kinds(_config(rpo_alpha=1.0), log_history=history)["likelihood_displacement"]
    assert on.patch["training"]["rpo_alpha"] == 2.0  # already on: twice as strong


def test_answers_that_run_on_after_the_json_are_diagnosed_with_the_sft_term() -> None:
    config = _config(rpo_alpha=0)
    found = _kinds(config, predictions=RUN_ON)
    never = found["preference_never_ends"]
    assert (never.evidence["run_on"], never.evidence["answers"]) == (2, 3)
    assert never.evidence["examples"][0].startswith('{"name": "Yusuf"')
    assert never.patch == {"training": {"rpo_alpha": 1.0}}
    assert "never_stops" not in found
    ended = [{"got": p["got"].split("}")[0] + "}"} for p in RUN_ON]
    assert "preference_never_ends" not in _kinds(config, predictions=ended)


def test_probe_generations_at_the_token_limit_count_for_a_dpo_run() -> None:
    generation = {
        "max_new_tokens": 32,
        "samples": [{"hit_limit": True, "text": "Yusuf Yusuf Yusuf"}] * 3 + [{"hit_limit": False}],
        "template": {},
    }
    found = _kinds(_config(rpo_alpha=0.5), generation=generation)
    assert found["preference_never_ends"].patch == {"training": {"rpo_alpha": 1.0}}
    assert "never_stops" not in found
