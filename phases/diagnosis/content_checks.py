"""Diagnoses from what the tuned model's answers say next to the references: answers that do
not depend on the input (`ignores_input`), and JSON answers with the right keys but the wrong
values (`format_only`). Both read the evaluation's per-row predictions ({input, expected, got})
only, so they work for any metric set."""

import json
from collections import Counter
from typing import Any

from phases.diagnosis.numbers import rounded
from phases.diagnosis.results import Diagnosis

MIN_ROWS = 4  # fewer answers than this say nothing about a model's habits
SAME_ANSWER_SHARE = 0.5  # ignores_input: this share of answers is one and the same text
SAME_FIELD_SHARE = 0.8  # ... or one JSON field holds the same value in this share of answers
VARIED_REFERENCES = 0.5  # ... while at least this share of the references are distinct
# ... and the answers repeat it beyond the references: their share of it closes at least this
# part of the gap between the references' share and 1 (imbalanced labels answered right don't)
BEYOND_REFERENCES = 0.5
JSON_SHARE = 0.6  # format_only: this share of references are JSON objects
KEYS_MATCH_SHARE = 0.6  # ... this share of answers carry exactly the reference's keys
FIELD_ACCURACY_FLOOR = 0.5  # ... and fewer than this share of their values are right
SHOWN = 3


def _norm(text: Any) -> str:
    return " ".join(str(text if text is not None else "").split()).lower()


def _scored(predictions: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The predictions that have a reference answer."""
    return [p for p in predictions or [] if _norm(p.get("expected"))]


def first_json_object(text: Any) -> dict[str, Any] | None:
    """The first JSON object in `text` (trailing text after it ignored), or None."""
    text = str(text or "")
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _value_text(value: Any) -> str:
    return _norm(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _beyond_references(answer_share: float, reference_share: float) -> bool:
    """True when the answers give one value clearly more often than the references do: the
    model answers it where the reference says otherwise, not only where the data is skewed."""
    gap = 1 - reference_share
    return gap > 0 and answer_share - reference_share >= BEYOND_REFERENCES * gap


def _constant_fields(pairs: list[tuple[dict, dict]]) -> dict[str, dict[str, Any]]:
    """JSON fields whose answered value barely changes while the references' values do."""
    constant = {}
    for key in sorted({k for ref, _ in pairs for k in ref}):
        answered = [(ref[key], got[key]) for ref, got in pairs if key in ref and key in got]
        if len(answered) < MIN_ROWS:
            continue
        value, times = Counter(_value_text(g) for _, g in answered).most_common(1)[0]
        references = [_value_text(r) for r, _ in answered]
        share, reference_share = times / len(answered), references.count(value) / len(answered)
        if (
            share >= SAME_FIELD_SHARE
            and len(set(references)) >= 3
            and _beyond_references(share, reference_share)
        ):
            constant[key] = {
                "value": value,
                "share": rounded(share, 3),
                "reference_share": rounded(reference_share, 3),
                "distinct_references": len(set(references)),
            }
    return constant


def _longer_patch(config: dict[str, Any]) -> dict[str, Any]:
    training = config["training"]
    if training.get("max_steps"):
        return {"training": {"max_steps": training["max_steps"] * 2}}
    return {"training": {"epochs": rounded(training["epochs"] * 2, 3)}}


def check_ignores_input(
    predictions: list[dict[str, Any]] | None, config: dict[str, Any]
) -> Diagnosis | None:
    """The tuned model gives the same answer (or the same JSON field value) whatever the input,
    although the references differ from row to row."""
    rows = _scored(predictions)
    distinct_refs = len({_norm(p["expected"]) for p in rows})
    if len(rows) < MIN_ROWS or distinct_refs < VARIED_REFERENCES * len(rows):
        return None
    answer, times = Counter(_norm(p.get("got")) for p in rows).most_common(1)[0]
    same_share = times / len(rows) if answer else 0.0
    reference_share = sum(_norm(p["expected"]) == answer for p in rows) / len(rows)
    same_text = same_share >= SAME_ANSWER_SHARE and _beyond_references(same_share, reference_share)
    pairs = [
        (ref, got)
        for p in rows
        if (ref := first_json_object(p["expected"])) and (got := first_json_object(p.get("got")))
    ]
    constant = _constant_fields(pairs)
    if not same_text and not constant:
        return None
    if same_text:
        what = f"{times} of {len(rows)} answers ({same_share:.0%}) are the same text"
    else:
        what = "the answers' " + ", ".join(
            f"{k!r} is {v['value']} in {v['share']:.0%} of them "
            f"({v['reference_share']:.0%} of the references)"
            for k, v in constant.items()
        )
    examples = [
        {"input": p.get("input"), "expected": p["expected"], "got": p.get("got")}
        for p in rows[:SHOWN]
    ]
    return Diagnosis(
        kind="ignores_input",
        severity="error",
        summary=(
            f"The tuned model's answers do not depend on the input: {what}, while the "
            "references differ from row to row."
        ),
        evidence={
            "answers": len(rows),
            "distinct_answers": len({_norm(p.get("got")) for p in rows}),
            "distinct_references": distinct_refs,
            "most_common_answer": answer[:200],
            "most_common_answer_share": rounded(same_share, 3),
            "most_common_answer_reference_share": rounded(reference_share, 3),
            "constant_fields": constant,
            "examples": examples,
        },
        patch=_longer_patch(config),
        rationale=(
            "A model first learns the shape and the most common values of the answers, and "
            "only later to read them from the input; training twice as long gives it the steps "
            "to learn the mapping. If the answers stay the same, the learning rate may be too "
            "high (see lr_too_high) or the model too small for the task."
        ),
        expected_effect="Answers that change with the input; exact match and field accuracy rise.",
    )


def _json_rows(rows: list[dict[str, Any]]) -> list[tuple[dict, dict | None]]:
    return [
        (ref, first_json_object(p.get("got")))
        for p in rows
        if (ref := first_json_object(p["expected"])) is not None
    ]


def check_format_only(
    predictions: list[dict[str, Any]] | None, config: dict[str, Any]
) -> Diagnosis | None:
    """JSON references; the answers are JSON with the right keys, but most values are wrong."""
    rows = _scored(predictions)
    pairs = _json_rows(rows)
    if len(pairs) < MIN_ROWS or len(pairs) < JSON_SHARE * len(rows):
        return None
    shaped = [(ref, got) for ref, got in pairs if got is not None and set(got) == set(ref)]
    if len(shaped) < KEYS_MATCH_SHARE * len(pairs):
        return None
    per_key: dict[str, list[bool]] = {}
    for ref, got in shaped:
        for key, value in ref.items():
            per_key.setdefault(key, []).append(_value_text(got[key]) == _value_text(value))
    checks = [ok for oks in per_key.values() for ok in oks]
    accuracy = sum(checks) / len(checks) if checks else 0.0
    if accuracy >= FIELD_ACCURACY_FLOOR:
        return None
    by_key = {k: rounded(sum(v) / len(v), 3) for k, v in sorted(per_key.items())}
    wrong = [
        {"expected": json.dumps(ref, ensure_ascii=False), "got": json.dumps(got)}
        for ref, got in shaped
        if any(_value_text(got[k]) != _value_text(v) for k, v in ref.items())
    ]
    return Diagnosis(
        kind="format_only",
        severity="error",
        summary=(
            f"The model learned the answer format but not its content: {len(shaped)} of "
            f"{len(pairs)} answers are JSON with the reference's keys, yet only {accuracy:.0%} of "
            "their values are right."
        ),
        evidence={
            "json_references": len(pairs),
            "json_valid": sum(got is not None for _, got in pairs),
            "keys_match": len(shaped),
            "field_accuracy": rounded(accuracy, 3),
            "field_accuracy_by_key": by_key,
            "examples": wrong[:SHOWN],
        },
        patch=_longer_patch(config),
        rationale=(
            "The keys and punctuation are the same in every answer, so they are learned first; "
            "the values must be read from the input, which takes more training. Train twice "
            "as long (more varied data helps when the values are not in the input)."
        ),
        expected_effect="Field accuracy and exact match rise; the format stays valid.",
    )
