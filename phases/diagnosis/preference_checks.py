"""Diagnoses of a preference (DPO) run from TRL's logs and the tuned answers: a loss that
saturated early, chosen replies that lost likelihood, and answers that do not end.

TRL logs `rewards/margins` (beta times the chosen-minus-rejected log-ratio, so the sigmoid DPO
loss is -log sigmoid(margin)), `rewards/accuracies`, `logps/chosen` and `logps/rejected`
(summed log-probabilities of the replies) every `logging_steps`. Patches touch `training`:
`rpo_alpha` (the SFT term on chosen replies), `beta`, the learning rate, the run length.
"""

import json
from typing import Any

from phases.diagnosis.numbers import finite, mean, rounded, series
from phases.diagnosis.results import Diagnosis

SATURATED_MARGIN = 5.0  # -log sigmoid(5) = 0.0067: the pairs teach the optimizer ~nothing
EARLY_FRACTION = 0.5  # saturated within this share of the run: the rest of it was idle
DISPLACEMENT_NATS = 2.0  # chosen log-prob fell by more than this from its first logged value
RUN_ON_FRACTION = 0.3  # this share of the answers running past a complete answer
RPO_ALPHA_ON = 1.0  # the SFT weight a patch turns on (the default's; README)
RPO_ALPHA_MAX = 4.0
SHOWN = 3


def is_preference_run(config: dict[str, Any]) -> bool:
    """True when the run trains with DPO (the only method that logs these series)."""
    return (config.get("training") or {}).get("method") == "dpo"


def _finite_series(log_history: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(s, float(v)) for s, v in series(log_history, key) if finite(v)]


def _more_sft(training: dict[str, Any]) -> dict[str, Any]:
    """A patch that turns the SFT term on, or doubles it (capped)."""
    alpha = float(training.get("rpo_alpha") or 0.0)
    return {"rpo_alpha": RPO_ALPHA_ON if alpha <= 0 else min(RPO_ALPHA_MAX, alpha * 2)}


def check_preference_saturation(
    log_history: list[dict[str, Any]], config: dict[str, Any]
) -> Diagnosis | None:
    """The DPO margin saturated (loss ~0) early and stayed there: the rest of the run taught
    nothing (the pairs are too easy to tell apart, or beta lets the margin run away)."""
    if not is_preference_run(config):
        return None
    margins = _finite_series(log_history, "rewards/margins")
    if len(margins) < 3:
        return None
    last_step = margins[-1][0]
    saturated_at = next(
        (
            s
            for i, (s, _) in enumerate(margins)
            if all(m >= SATURATED_MARGIN for _, m in margins[i:])
        ),
        None,
    )
    if saturated_at is None or saturated_at > EARLY_FRACTION * last_step:
        return None
    training = config["training"]
    sft_on = float(training.get("rpo_alpha") or 0.0) > 0
    # Without the SFT term, turning it on gives the idle steps something to teach; with it
    # on already, stop where the margin saturated and move less per step.
    patch = (
        {
            "max_steps": max(1, saturated_at),
            "learning_rate": rounded(training["learning_rate"] / 2, 3),
        }
        if sft_on
        else _more_sft(training)
    )
    losses = _finite_series(log_history, "loss")
    accuracies = _finite_series(log_history, "rewards/accuracies")
    return Diagnosis(
        kind="preference_saturated",
        severity="warning",
        summary=(
            f"The DPO margin passed {SATURATED_MARGIN:g} at step {saturated_at} of {last_step} "
            f"and stayed there (DPO loss under {0.0067:g}): the last "
            f"{1 - saturated_at / last_step:.0%} of the run taught the preference nothing."
        ),
        evidence={
            "saturated_at_step": saturated_at,
            "last_step": last_step,
            "margins": [[s, rounded(m, 3)] for s, m in margins[-10:]],
            "losses": [[s, rounded(v, 3)] for s, v in losses[-10:]],
            "final_accuracy": rounded(accuracies[-1][1], 3) if accuracies else None,
            "beta": training.get("beta"),
            "rpo_alpha": training.get("rpo_alpha"),
        },
        patch={"training": patch},
        rationale=(
            "Once every pair is told apart the sigmoid DPO loss has no gradient left, yet the "
            "optimizer keeps moving the model. "
            + (
                "The SFT term is already on, so stop where the margin saturated, at half the "
                "learning rate."
                if sft_on
                else "An SFT term on the chosen replies (rpo_alpha) gives the remaining steps "
                "something to teach: the answers themselves, end token included."
            )
        ),
        expected_effect="A run as long as the pairs can teach; chosen answers kept likely.",
        route="retrain",
    )


def check_likelihood_displacement(
    log_history: list[dict[str, Any]], config: dict[str, Any]
) -> Diagnosis | None:
    """The chosen replies became less likely while the margin grew: DPO widened the gap by
    pushing both replies down (likelihood displacement), so the tuned model drifts to text
    neither reply had."""
    if not is_preference_run(config):
        return None
    chosen = _finite_series(log_history, "logps/chosen")
    if len(chosen) < 3:
        return None
    first, last = chosen[0][1], mean([v for _, v in chosen[-min(3, len(chosen) - 1) :]])
    if first - last <= DISPLACEMENT_NATS:
        return None
    rejected = _finite_series(log_history, "logps/rejected")
    training = config["training"]
    patch = {**_more_sft(training), "learning_rate": rounded(training["learning_rate"] / 2, 3)}
    return Diagnosis(
        kind="likelihood_displacement",
        severity="error" if first - last > 3 * DISPLACEMENT_NATS else "warning",
        summary=(
            f"The chosen replies lost likelihood: their log-probability fell from {first:.3g} "
            f"to {last:.3g} while DPO widened the margin"
            + (
                f" (rejected {rejected[0][1]:.3g} -> {rejected[-1][1]:.3g})."
                if len(rejected) >= 2
                else "."
            )
        ),
        evidence={
            "chosen_logps_first": rounded(first),
            "chosen_logps_last": rounded(last),
            "chosen_logps": [[s, rounded(v, 3)] for s, v in chosen[-10:]],
            "rejected_logps": [[s, rounded(v, 3)] for s, v in rejected[-10:]],
            "rpo_alpha": training.get("rpo_alpha"),
        },
        patch={"training": patch},
        rationale=(
            "DPO only asks for chosen above rejected; it can get there by lowering both. An SFT "
            "term on the chosen replies (rpo_alpha) holds their likelihood up, and a smaller "
            "learning rate lets it keep pace."
        ),
        expected_effect="logps/chosen rises or holds while the margin grows.",
        route="retrain",
    )


def _runs_on(answer: str | None) -> bool:
    """A complete JSON value followed by more text (the model did not stop after it)."""
    text = (answer or "").lstrip()
    if not text.startswith(("{", "[")):
        return False
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return False
    return bool(text[end:].strip())


def _hit_limit(generation: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [s for s in (generation or {}).get("samples") or [] if s.get("hit_limit")]


def check_preference_never_ends(
    predictions: list[dict[str, Any]] | None,
    generation: dict[str, Any] | None,
    config: dict[str, Any],
) -> Diagnosis | None:
    """After DPO the tuned answers do not end: they write the answer and run on (a JSON
    object followed by more text), or generation runs to max_new_tokens."""
    if not is_preference_run(config):
        return None
    answers = [p.get("got") for p in predictions or [] if p.get("got") is not None]
    run_on = [a for a in answers if _runs_on(a)]
    samples = (generation or {}).get("samples") or []
    hit = _hit_limit(generation)
    by_answers = answers and len(run_on) / len(answers) >= RUN_ON_FRACTION
    by_probe = samples and len(hit) / len(samples) >= 0.5
    if not (by_answers or by_probe):
        return None
    signals = []
    if by_answers:
        signals.append(f"{len(run_on)} of {len(answers)} answers go on after a complete JSON value")
    if by_probe:
        signals.append(f"{len(hit)} of {len(samples)} probe generations ran to max_new_tokens")
    return Diagnosis(
        kind="preference_never_ends",
        severity="error",
        summary="The tuned model does not end its answers: " + "; ".join(signals) + ".",
        evidence={
            "run_on": len(run_on),
            "answers": len(answers),
            "hit_limit": len(hit),
            "samples": len(samples),
            "examples": [a[:200] for a in (run_on or [s.get("text", "") for s in hit])[:SHOWN]],
            "rpo_alpha": config["training"].get("rpo_alpha"),
        },
        patch={"training": _more_sft(config["training"])},
        rationale=(
            "Both replies of a pair end with the end-of-turn token, so the DPO term says nothing "
            "about stopping; the SFT term on the chosen replies (rpo_alpha) trains the end token "
            "after the answer. Starting from an SFT adapter of the same data "
            "(training.sft_adapter) does the same before DPO starts."
        ),
        expected_effect="Answers end after the JSON; exact match rises.",
        route="retrain",
    )
