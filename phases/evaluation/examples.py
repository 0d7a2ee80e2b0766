"""A handful of eval rows for people to read: the tuned model's worst, best and random answers.

Rows are ranked by the tuned model's per-row score (json_field_accuracy for JSON references,
else ROUGE-L); the random ones come from a fixed seed, so a report reads the same every time.
"""

import random

from phases.evaluation.results import EvaluationResult, ExampleRow, Prediction

PER_KIND = 2
MAX_CHARS = 300
SEED = 0


def truncate(text: str | None, limit: int = MAX_CHARS) -> str | None:
    """`text` cut to `limit` characters, ending in '…' when cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _row(which: str, index: int, tuned: Prediction, base: Prediction | None) -> ExampleRow:
    return ExampleRow(
        which=which,
        row=index,
        input=truncate(tuned.input) or "",
        reference=truncate(tuned.expected),
        base_output=truncate(base.got) if base else None,
        tuned_output=truncate(tuned.got),
        score=tuned.score,
    )


def select_examples(
    tuned: EvaluationResult, base: EvaluationResult | None, per_kind: int = PER_KIND
) -> list[ExampleRow]:
    """Up to `per_kind` worst, best and random (seeded) scored rows, no row twice."""
    scored = [i for i, p in enumerate(tuned.predictions) if p.score is not None]
    ranked = sorted(scored, key=lambda i: (tuned.predictions[i].score, i))
    worst = ranked[:per_kind]
    best = [i for i in reversed(ranked) if i not in worst][:per_kind]
    rest = [i for i in ranked if i not in worst and i not in best]
    randoms = sorted(random.Random(SEED).sample(rest, min(per_kind, len(rest))))
    base_rows = (
        base.predictions if base and len(base.predictions) == len(tuned.predictions) else None
    )
    return [
        _row(which, i, tuned.predictions[i], base_rows[i] if base_rows else None)
        for which, indexes in (("worst", worst), ("best", best), ("random", randoms))
        for i in indexes
    ]
