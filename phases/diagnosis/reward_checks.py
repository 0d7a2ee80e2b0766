"""Diagnoses of RL runs (GRPO, RLOO) from their rewards: no spread, clipped completions, and a
reward that rose while the evaluation fell (reward hacking).

The evidence is the Trainer's log history (TRL logs `reward`, `frac_reward_zero_std` and
`completions/clipped_ratio` at every logging step) and the reward guard that fired, if one did
(`training["reward_guard"]`). Patches only touch the `training` section.
"""

import math
from typing import Any

from phases.diagnosis.numbers import finite, mean, rounded, series
from phases.diagnosis.results import Diagnosis

ZERO_SPREAD = 0.9  # a logged step with at least this share of flat groups taught nothing
CLIPPED = 0.95  # a logged step with at least this share of completions at the length cap
MOST = 0.5  # ... in more than this share of the logged steps
HACKING_EVAL_DROP = 0.02  # the eval metric fell at least this much (absolute) under the base
MAX_GENERATIONS = 16
MAX_COMPLETION = 4096


def _values(log_history: list[dict[str, Any]], key: str) -> list[float]:
    return [float(v) for _, v in series(log_history, key) if finite(v)]


def _guard(training: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    guard = (training or {}).get("reward_guard")
    return guard if guard and guard.get("kind") == kind else None


def _mostly(values: list[float], threshold: float) -> bool:
    return bool(values) and sum(v >= threshold for v in values) / len(values) > MOST


def _more_generations(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """Twice the generations per prompt, with a batch that still holds whole groups."""
    generations = min(MAX_GENERATIONS, train_cfg["num_generations"] * 2)
    patch: dict[str, Any] = {"num_generations": generations}
    per_step = train_cfg["batch_size"] * train_cfg["gradient_accumulation_steps"]
    if per_step % generations:
        patch["batch_size"] = generations * math.ceil(train_cfg["batch_size"] / generations)
    return patch


def _second_reward(train_cfg: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rewards plus one that gives partial credit, when an all-or-nothing one stands alone."""
    rewards = train_cfg.get("rewards") or []
    names = {r["function"] for r in rewards}
    if len(rewards) != 1 or not names & {"exact_match", "regex", "json_schema"}:
        return None
    extra = "json_valid" if "json_valid" not in names else "length"
    return [*rewards, {"function": extra, "weight": 0.5}]


def check_zero_reward_spread(
    log_history: list[dict[str, Any]], config: dict[str, Any], training: dict[str, Any] | None
) -> Diagnosis | None:
    """Every completion of a prompt got the same reward: GRPO/RLOO had no gradient."""
    train_cfg = config["training"]
    if "num_generations" not in train_cfg:
        return None
    fractions = _values(log_history, "frac_reward_zero_std")
    guard = _guard(training, "zero_reward_spread")
    if guard is None and not _mostly(fractions, ZERO_SPREAD):
        return None
    patch = _more_generations(train_cfg)
    patch["temperature"] = rounded(min(1.5, train_cfg.get("temperature", 1.0) + 0.3), 3)
    second = _second_reward(train_cfg)
    if second:
        patch["rewards"] = second
    return Diagnosis(
        kind="zero_reward_spread",
        severity="error",
        summary=(
            "The rewards had no spread: every completion of a prompt scored the same "
            f"(frac_reward_zero_std {rounded(mean(fractions), 3) if fractions else 'n/a'}), so "
            "the group-relative advantages were zero and the model learned nothing."
            + (f" {guard['message']}" if guard else "")
        ),
        evidence={
            "mean_frac_reward_zero_std": rounded(mean(fractions)) if fractions else None,
            "logged_steps": len(fractions),
            "guard": guard,
        },
        patch={"training": patch},
        rationale=(
            "More and more varied completions per prompt make some of them score differently"
            + (
                ", and a reward with partial credit separates near misses from misses."
                if second
                else "."
            )
        ),
        expected_effect="frac_reward_zero_std falls below 1 and the mean reward starts to move.",
        route="retrain",
    )


def check_completions_clipped(
    log_history: list[dict[str, Any]], config: dict[str, Any], training: dict[str, Any] | None
) -> Diagnosis | None:
    """(Almost) every completion hit max_completion_length: the rewards judged cut answers."""
    train_cfg = config["training"]
    if "max_completion_length" not in train_cfg:
        return None
    ratios = _values(log_history, "completions/clipped_ratio")
    guard = _guard(training, "completions_clipped")
    if guard is None and not _mostly(ratios, CLIPPED):
        return None
    longer = min(MAX_COMPLETION, train_cfg["max_completion_length"] * 2)
    return Diagnosis(
        kind="completions_clipped",
        severity="warning",
        summary=(
            f"Completions were cut at max_completion_length ({train_cfg['max_completion_length']} "
            "tokens) almost every time, so the rewards scored unfinished answers."
            + (f" {guard['message']}" if guard else "")
        ),
        evidence={
            "mean_clipped_ratio": rounded(mean(ratios)) if ratios else None,
            "max_completion_length": train_cfg["max_completion_length"],
            "guard": guard,
        },
        patch={"training": {"max_completion_length": longer}},
        rationale="A longer cap lets an answer end before it is scored.",
        expected_effect="completions/clipped_ratio falls and the rewards judge whole answers.",
        route="retrain",
    )


def check_reward_hacking(
    log_history: list[dict[str, Any]], config: dict[str, Any], evaluation: dict[str, Any] | None
) -> Diagnosis | None:
    """The training reward rose while the evaluation metric fell below the base model's."""
    train_cfg = config["training"]
    rewards = _values(log_history, "reward")
    if "rewards" not in train_cfg or len(rewards) < 5:
        return None
    fifth = max(1, len(rewards) // 5)
    first, last = mean(rewards[:fifth]), mean(rewards[-fifth:])
    fell = _fallen_metric(evaluation)
    if last <= first or fell is None:
        return None
    metric, base, tuned = fell
    patch: dict[str, Any] = {"learning_rate": rounded(train_cfg["learning_rate"] / 2, 3)}
    second = _second_reward(train_cfg)
    if second:
        patch["rewards"] = second
    return Diagnosis(
        kind="reward_hacking",
        severity="error",
        summary=(
            f"The training reward rose ({rounded(first, 3)} -> {rounded(last, 3)}) while "
            f"{metric} fell below the base model ({rounded(base, 3)} -> {rounded(tuned, 3)}): "
            "the model learned to please the reward, not to do the task."
        ),
        evidence={
            "reward_first_fifth": rounded(first),
            "reward_last_fifth": rounded(last),
            "metric": metric,
            "base": base,
            "tuned": tuned,
        },
        patch={"training": patch},
        rationale=(
            "A smaller learning rate keeps the policy near the base model"
            + (", and a second reward checks what the first one lets through." if second else ".")
        ),
        expected_effect="The reward rises more slowly and the evaluation metric no longer falls.",
        route="retrain",
    )


def _fallen_metric(evaluation: dict[str, Any] | None) -> tuple[str, float, float] | None:
    """(metric, base, tuned) of the first metric (higher is better) that fell under the base."""
    base, tuned = (evaluation or {}).get("base") or {}, (evaluation or {}).get("tuned") or {}
    for name in ("exact_match", "json_valid", "json_field_accuracy", "rougeL", "bleu"):
        b, t = base.get(name), tuned.get(name)
        if finite(b) and finite(t) and float(t) <= float(b) - HACKING_EVAL_DROP:
            return name, float(b), float(t)
    return None
