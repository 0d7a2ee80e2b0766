"""Diagnoses from the Trainer log history: divergence, a too-high learning rate, underfitting,
overfitting. Each takes the log history and the run config (a dict) and returns a Diagnosis or
None; patches only touch the `training` section."""

import math
from typing import Any

from phases.diagnosis.numbers import finite, mean, rounded, series
from phases.diagnosis.results import Diagnosis

SPIKE_FACTOR = 3.0  # a loss this many times the first one is a blow-up, not noise
GRAD_EXPLOSION_FACTOR = 10.0
PLATEAU_FRACTION = 0.7  # underfitting: the loss kept more than this share of its start
RISE_FACTOR = 1.2  # lr_too_high: a final loss this far above the first made the model worse
PEAK_FACTOR = 2.0  # lr_too_high: a climb to this many times the first loss is overshooting
POOR_ANSWER_SCORE = 0.3  # underfitting: mean per-row ROUGE-L of the answers below this
STILL_FALLING_DROP = 0.15  # ... and the loss fell this much over its last third, or
FEW_STEPS = 20  # ... training took fewer optimizer steps than this
SAFE_LEARNING_RATE = {"full": 1e-3, "lora": 5e-3}  # ceilings for a fix that must be stable


def train_losses(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, loss) of the finite training losses."""
    return [(s, float(v)) for s, v in series(log_history, "loss") if finite(v)]


def _safe_ceiling(training: dict[str, Any]) -> float:
    return SAFE_LEARNING_RATE["lora" if training.get("lora") else "full"]


def _longer(training: dict[str, Any], factor: float) -> dict[str, Any]:
    """A patch scaling the schedule length (max_steps when set, else epochs)."""
    if training.get("max_steps"):
        return {"max_steps": max(1, round(training["max_steps"] * factor))}
    return {"epochs": rounded(max(training["epochs"] * factor, 0.1), 3)}


def check_divergence(
    log_history: list[dict[str, Any]], config: dict[str, Any], training: dict[str, Any] | None
) -> Diagnosis | None:
    """NaN/inf loss or gradient, a loss spike, or an exploding gradient norm."""
    signals: list[str] = []
    evidence: dict[str, Any] = {}
    bad = [(s, v) for key in ("loss", "grad_norm") for s, v in series(log_history, key)]
    bad = [(s, v) for s, v in bad if not finite(v)]
    if bad or (training or {}).get("status") == "diverged":
        step = (training or {}).get("diverged_at_step") or (bad[0][0] if bad else None)
        signals.append(f"the loss or gradient became NaN/infinite at step {step}")
        evidence["non_finite_at_step"] = step
    losses = train_losses(log_history)
    if len(losses) >= 2:
        first = losses[0][1]
        peak_step, peak = max(losses[1:], key=lambda p: p[1])
        if peak > SPIKE_FACTOR * first and peak > first + 1.0:
            signals.append(f"the loss jumped from {first:.3g} to {peak:.3g} at step {peak_step}")
            evidence.update(first_loss=rounded(first), peak_loss=rounded(peak), peak_step=peak_step)
    norms = [(s, float(v)) for s, v in series(log_history, "grad_norm") if finite(v)]
    if len(norms) >= 3:
        start = sorted(v for _, v in norms[:3])[1]
        norm_step, norm = max(norms, key=lambda p: p[1])
        if norm > GRAD_EXPLOSION_FACTOR * start and norm > 10.0:
            signals.append(f"the gradient norm grew from {start:.3g} to {norm:.3g}")
            evidence.update(grad_norm_start=rounded(start), grad_norm_peak=rounded(norm))
    if not signals:
        return None
    train_cfg = config["training"]
    lr = train_cfg["learning_rate"]
    new_lr = rounded(min(lr / 10, _safe_ceiling(train_cfg)), 3)
    patch: dict[str, Any] = {"learning_rate": new_lr}
    if train_cfg.get("warmup_ratio", 0) < 0.05:
        patch["warmup_ratio"] = 0.1
    if train_cfg.get("max_grad_norm", 1.0) > 1.0:
        patch["max_grad_norm"] = 1.0
    evidence.update(signals=signals, learning_rate=lr)
    return Diagnosis(
        kind="divergence",
        severity="error",
        summary="Training diverged: " + "; ".join(signals) + ".",
        evidence=evidence,
        patch={"training": patch},
        rationale=(
            f"A learning rate of {lr:g} takes steps too large for this model; the updates "
            f"overshoot and the loss explodes. {new_lr:g} is a tenth of it (capped at a rate "
            "known to be stable), with a warm-up and gradient clipping."
        ),
        expected_effect="The loss falls steadily with no NaN or spikes; metrics improve.",
    )


def start_loss(evaluation: dict[str, Any] | None) -> float | None:
    """The base model's mean loss on the eval references (log of its perplexity): where the
    training loss starts before any update. None when the base perplexity is unknown."""
    ppl = ((evaluation or {}).get("base") or {}).get("perplexity")
    return math.log(ppl) if finite(ppl) and ppl >= 1 else None


def check_lr_too_high(
    log_history: list[dict[str, Any]],
    config: dict[str, Any],
    start: float | None = None,
) -> Diagnosis | None:
    """A loss that ends above where it started, rises several-fold on the way, or goes up and
    down by large amounts instead of falling (all without NaN: that is divergence). `start` is
    the loss before training (see `start_loss`): the first logged loss already averages
    several steps, which a too-high rate may have pushed up."""
    losses = [v for _, v in train_losses(log_history)]
    if len(losses) < 2:
        return None
    first = min(losses[0], start) if start is not None else losses[0]
    end = mean(losses[-min(3, len(losses) - 1) :])
    peak = max(losses if start is not None else losses[1:])
    signals: list[str] = []
    rose = end > RISE_FACTOR * first and end - first > 0.5
    if rose:
        signals.append(f"the loss rose from {first:.3g} to {end:.3g} instead of falling")
    if peak > PEAK_FACTOR * first and peak > first + 1.0:
        signals.append(f"it climbed to {peak:.3g}, {peak / first:.1f}x its first value")
    oscillation = _oscillation(losses)
    if oscillation:
        signals.append(
            f"it rose on {oscillation[0]:.0%} of steps, moving {oscillation[1]:.0%} of its size "
            "per step, and ended near where it started"
        )
    if not signals:
        return None
    train_cfg = config["training"]
    lr = train_cfg["learning_rate"]
    overshoot = len(signals) > 1 or not oscillation  # a rise, not only a bounce
    new_lr = rounded(min(lr / 10, _safe_ceiling(train_cfg)) if overshoot else lr / 3, 3)
    return Diagnosis(
        kind="lr_too_high",
        severity="error" if rose else "warning",  # trained to worse than it started
        summary="The learning rate is too high: " + "; ".join(signals) + ".",
        evidence={
            "first_loss": rounded(first),
            "final_loss": rounded(end),
            "peak_loss": rounded(peak),
            "rising_steps_fraction": rounded(oscillation[0], 3) if oscillation else None,
            "losses": [rounded(v) for v in losses[-10:]],
            "learning_rate": lr,
            "signals": signals,
        },
        patch={"training": {"learning_rate": new_lr}},
        rationale=(
            f"Steps of {lr:g} overshoot the minimum, so the loss climbs or bounces; "
            f"{new_lr:g} lets the optimizer descend"
            + (" (capped at a rate known to be stable)." if overshoot else ".")
        ),
        expected_effect="A training loss that falls smoothly below its first value.",
    )


def _oscillation(losses: list[float]) -> tuple[float, float] | None:
    """(share of rising steps, mean step size relative to the loss) for a loss that bounces
    without making progress; None for any other curve."""
    if len(losses) < 6:
        return None
    diffs = [b - a for a, b in zip(losses, losses[1:], strict=False)]
    ups = sum(d > 0 for d in diffs) / len(diffs)
    amplitude = mean([abs(d) for d in diffs]) / max(mean(losses), 1e-9)
    if ups < 0.4 or amplitude < 0.1 or mean(losses[-3:]) < 0.8 * losses[0]:
        return None
    return ups, amplitude


def _poor_answers(predictions: list[dict[str, Any]] | None) -> float | None:
    """The mean per-row score of the tuned answers (the evaluation's row score: ROUGE-L, or
    field accuracy for JSON; exact match where a row has none), or None without references."""
    rows = [p for p in predictions or [] if str(p.get("expected") or "").strip()]
    if not rows:
        return None
    scores = [
        float(p["score"])
        if finite(p.get("score"))
        else float(" ".join(str(p.get("got") or "").split()) == " ".join(p["expected"].split()))
        for p in rows
    ]
    return mean(scores)


def check_underfitting(
    log_history: list[dict[str, Any]],
    config: dict[str, Any],
    training: dict[str, Any] | None = None,
    predictions: list[dict[str, Any]] | None = None,
) -> Diagnosis | None:
    """The model did not learn the data: the training loss stayed high, or training stopped
    after a few steps while the loss was still falling and the answers are still poor."""
    losses = [v for _, v in train_losses(log_history)]
    steps = (training or {}).get("global_step") or _last_logged_step(log_history)
    if not steps:
        return None
    first, last = _first_and_last_loss(losses, log_history)
    answer_score = _poor_answers(predictions)
    poor = answer_score is not None and answer_score < POOR_ANSWER_SCORE
    still_falling = _recent_drop(losses) >= STILL_FALLING_DROP
    signals: list[str] = []
    if len(losses) >= 2 and last > PLATEAU_FRACTION * first:
        signals.append(
            f"the loss fell only from {first:.3g} to {last:.3g} ({1 - last / first:.0%})"
        )
    if poor and (still_falling or steps < FEW_STEPS):
        falling = f", the loss still falling ({_recent_drop(losses):.0%} over its last stretch)"
        signals.append(
            f"training stopped after {steps} optimizer steps{falling if still_falling else ''} "
            f"with answers scoring {answer_score:.2f} against the references"
        )
    if not signals:
        return None
    few = poor and steps < FEW_STEPS  # far too short a run: doubling it is not enough
    patch = _longer(config["training"], 4.0 if few else 2.0)
    return Diagnosis(
        kind="underfitting",
        severity="warning",
        summary="The model has not learned the data yet: " + "; ".join(signals) + ".",
        evidence={
            "first_loss": None if first is None else rounded(first),
            "final_loss": None if last is None else rounded(last),
            "points": len(losses),
            "steps": steps,
            "recent_loss_drop": rounded(_recent_drop(losses), 3),
            "mean_answer_score": None if answer_score is None else rounded(answer_score, 3),
            "signals": signals,
        },
        patch={"training": patch},
        rationale=(
            "The model has not seen the data enough to learn it; train longer (4x when it stopped "
            f"after fewer than {FEW_STEPS} steps with poor answers, else 2x). The loss was "
            "still falling, so the next iteration continues from where this one ended (its "
            "weights and optimizer state) instead of starting over; the remaining steps follow "
            "the learning-rate schedule of the longer run."
        ),
        expected_effect="A clearly lower training loss and better eval metrics.",
        route="continue",
    )


def _last_logged_step(log_history: list[dict[str, Any]]) -> int:
    """The last step with a training loss: per-step, or the Trainer's closing `train_loss`
    (the only one a run shorter than logging_steps has)."""
    return max(
        (s for key in ("loss", "train_loss") for s, _ in series(log_history, key)), default=0
    )


def _first_and_last_loss(
    losses: list[float], log_history: list[dict[str, Any]]
) -> tuple[float | None, float | None]:
    """The first logged loss and the mean of the last few. Without per-step losses (a run
    shorter than logging_steps) the run's mean `train_loss` stands for both; None without it."""
    if losses:
        return losses[0], mean(losses[-min(3, max(1, len(losses) - 1)) :])
    run_means = [float(v) for _, v in series(log_history, "train_loss") if finite(v)]
    return (run_means[-1], run_means[-1]) if run_means else (None, None)


def _recent_drop(losses: list[float]) -> float:
    """How much the loss fell over the last third of the logged points, relative to its
    value there (0 when it did not fall)."""
    if len(losses) < 2:
        return 0.0
    start = losses[-max(2, len(losses) // 3 + 1)]
    return max(0.0, (start - losses[-1]) / max(start, 1e-9))


def check_overfitting(
    log_history: list[dict[str, Any]], config: dict[str, Any]
) -> Diagnosis | None:
    """Eval loss rising while train loss falls, or a wide train-eval gap."""
    evals = [
        (e.get("step", 0), float(e["eval_loss"]), e.get("epoch"))
        for e in log_history
        if finite(e.get("eval_loss"))
    ]
    losses = train_losses(log_history)
    if len(evals) < 2 or len(losses) < 2:
        return None
    best_step, best, best_epoch = min(evals, key=lambda p: p[1])
    last_step, last, _ = evals[-1]
    train_at_best = mean([v for s, v in losses if s <= best_step][-3:] or [losses[0][1]])
    train_last = mean([v for _, v in losses[-3:]])
    rising = last > 1.1 * best and last - best > 0.05 and train_last < train_at_best
    gap = last - train_last > 1.0 and last > 2.0 * train_last
    if not (rising or gap):
        return None
    train_cfg = config["training"]
    if rising and train_cfg.get("max_steps"):
        patch = {"max_steps": max(1, int(best_step))}
    elif rising and best_epoch:
        patch = {"epochs": float(max(1, math.ceil(best_epoch)))}
    else:
        patch = _longer(train_cfg, 0.5)
    if patch == {k: train_cfg.get(k) for k in patch}:  # already that short: regularize instead
        patch = {"weight_decay": 0.1}
    signals = []
    if rising:
        signals.append(
            f"eval loss was lowest ({best:.3g}) at step {best_step}, then rose to {last:.3g} "
            f"while the training loss fell from {train_at_best:.3g} to {train_last:.3g}"
        )
    if gap:
        signals.append(f"final eval loss {last:.3g} vs training loss {train_last:.3g}")
    return Diagnosis(
        kind="overfitting",
        severity="warning",
        summary="The model memorizes the training data: " + "; ".join(signals) + ".",
        evidence={
            "best_eval_loss": rounded(best),
            "best_eval_step": best_step,
            "final_eval_loss": rounded(last),
            "final_eval_step": last_step,
            "final_train_loss": rounded(train_last),
            "signals": signals,
        },
        patch={"training": patch},
        rationale=(
            "Training past the point where eval loss is lowest only memorizes the training "
            "examples; stop there (more, varied data helps most)."
        ),
        expected_effect="Eval loss ends near its best value; metrics on new inputs improve.",
    )
