"""Diagnoses from what the tuned model produced: no effect versus the base model, empty
answers, repetition, and generation that never stops (runs to max_new_tokens)."""

from typing import Any

from phases.diagnosis.numbers import finite, rounded
from phases.diagnosis.results import Diagnosis

SAME_ABSOLUTE = 0.01  # bounded metrics (rouge, bleu, ...) closer than this are "the same"
SAME_RELATIVE = 0.02  # perplexity within 2% is "the same"
EMPTY_FRACTION = {"warning": 0.2, "error": 0.5}
REPETITIVE_FRACTION = 0.3
NEVER_STOPS_FRACTION = 0.5
SHOWN = 3


def check_no_effect(evaluation: dict[str, Any] | None, config: dict[str, Any]) -> Diagnosis | None:
    """The tuned model scores about the same as the base model on every shared metric."""
    base, tuned = (evaluation or {}).get("base") or {}, (evaluation or {}).get("tuned") or {}
    shared = [m for m in tuned if finite(tuned[m]) and finite(base.get(m))]
    if not shared:
        return None
    for name in shared:
        b, t = float(base[name]), float(tuned[name])
        same = (
            abs(t - b) <= SAME_RELATIVE * abs(b)
            if name == "perplexity"
            else abs(t - b) <= SAME_ABSOLUTE
        )
        if not same:
            return None
    train_cfg = config["training"]
    lr = train_cfg["learning_rate"]
    ceiling = 5e-3 if train_cfg.get("lora") else 1e-3
    patch: dict[str, Any] = {}
    if lr * 3 <= ceiling:
        patch["learning_rate"] = rounded(lr * 3, 3)
    if train_cfg.get("max_steps"):
        patch["max_steps"] = train_cfg["max_steps"] * 2
    else:
        patch["epochs"] = rounded(train_cfg["epochs"] * 2, 3)
    return Diagnosis(
        kind="no_effect",
        severity="warning",
        summary="Fine-tuning had no measurable effect: the tuned model scores like the base model.",
        evidence={"base": {m: base[m] for m in shared}, "tuned": {m: tuned[m] for m in shared}},
        patch={"training": patch},
        rationale=(
            "The updates were too small or too few to change the model's behaviour; train longer"
            + (" with a larger learning rate." if "learning_rate" in patch else ".")
        ),
        expected_effect="Metrics move away from the base model's.",
    )


def check_empty_outputs(predictions: list[dict[str, Any]] | None) -> Diagnosis | None:
    """Many answers are empty where a reference answer exists."""
    scored = [p for p in predictions or [] if (p.get("expected") or "").strip()]
    empty = [p for p in scored if not (p.get("got") or "").strip()]
    if not scored or len(empty) / len(scored) < EMPTY_FRACTION["warning"]:
        return None
    share = len(empty) / len(scored)
    return Diagnosis(
        kind="empty_outputs",
        severity="error" if share >= EMPTY_FRACTION["error"] else "warning",
        summary=f"{len(empty)} of {len(scored)} answers ({share:.0%}) are empty.",
        evidence={
            "empty": len(empty),
            "answers": len(scored),
            "examples": [
                {"input": p.get("input"), "expected": p.get("expected")} for p in empty[:SHOWN]
            ],
        },
        rationale=(
            "The model ends its answer at once: usually it learned to emit the end token right "
            "after the prompt (a chat template or completion format that differs between "
            "training and generation). Check model.chat_template and the data format."
        ),
        expected_effect="Non-empty answers once prompt formats agree.",
    )


def repetitive(text: str) -> bool:
    """True for a long answer whose word 3-grams are mostly repeats."""
    words = text.split()
    if len(words) < 12:
        return False
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(set(grams)) / len(grams) < 0.5


def check_repetition(predictions: list[dict[str, Any]] | None) -> Diagnosis | None:
    """Answers that loop over the same words."""
    answers = [p for p in predictions or [] if p.get("got")]
    looping = [p for p in answers if repetitive(p["got"])]
    if not answers or len(looping) / len(answers) < REPETITIVE_FRACTION:
        return None
    return Diagnosis(
        kind="repetition",
        severity="warning",
        summary=f"{len(looping)} of {len(answers)} answers repeat the same phrases over and over.",
        evidence={
            "repetitive": len(looping),
            "answers": len(answers),
            "examples": [p["got"][:200] for p in looping[:SHOWN]],
        },
        rationale=(
            "Loops come from a model that has not learned where an answer ends (see never_stops) "
            "or is under-trained; no single config value fixes them."
        ),
        expected_effect="None by itself; fixing the linked problems removes the loops.",
    )


def check_never_stops(
    generation: dict[str, Any] | None, config: dict[str, Any]
) -> Diagnosis | None:
    """Generation runs to max_new_tokens: the model never emits its end token."""
    samples = (generation or {}).get("samples") or []
    hit = [s for s in samples if s.get("hit_limit")]
    if not samples or len(hit) / len(samples) < NEVER_STOPS_FRACTION:
        return None
    template = (generation or {}).get("template") or {}
    no_end = template.get("in_use_closes_turn") is False
    patch = None
    if no_end and template.get("own_closes_turn") and config["model"].get("chat_template"):
        patch = {"model": {"chat_template": None}}
    cause = (
        f"the chat template never writes the end token {template.get('eos_token')!r} after an "
        "assistant reply, so training never taught the model to stop"
        if no_end
        else "the model did not learn to emit its end token (missing EOS in the training "
        "targets, or a chat template that differs from the one used in training)"
    )
    return Diagnosis(
        kind="never_stops",
        severity="error" if no_end else "warning",
        summary=(
            f"{len(hit)} of {len(samples)} generations ran to max_new_tokens "
            f"({generation.get('max_new_tokens')}) without an end token: {cause}."
        ),
        evidence={
            "hit_limit": len(hit),
            "samples": len(samples),
            "max_new_tokens": generation.get("max_new_tokens"),
            "template": template,
            "examples": [s.get("text", "")[:200] for s in hit[:SHOWN]],
        },
        patch=patch,
        rationale=(
            "Use the tokenizer's own chat template, which ends each assistant turn with the end "
            "token, so the model learns where answers stop."
            if patch
            else "Make the chat template (model.chat_template) end every assistant turn with the "
            "tokenizer's end token, then retrain."
        ),
        expected_effect="Answers end on their own, well before max_new_tokens.",
    )
