"""Diagnoses from the data the run trained on: duplicates, train/eval leakage, truncation by
max_length, too few examples. Inputs are the data report (data_report.json) and the prepared
train/eval rows, so a diagnosis describes what the model actually saw."""

import json
import re
from collections import Counter
from typing import Any

from models.config import MAX_TOKENS
from phases.data.formats import near_key
from phases.diagnosis.results import Diagnosis

DUPLICATE_FRACTION = 0.1
REMOVED_DUPLICATES_FRACTION = 0.2
TRUNCATION_FRACTION = 0.05
FEW_EXAMPLES = {"warning": 10, "info": 50}
SHOWN = 3
_TOKENS = re.compile(r"(\d+) tokens")


def _near(row: dict[str, Any]) -> str:
    return near_key({k: v for k, v in row.items() if k != "kind"})


def _short(row: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(row, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_duplicates(
    train_rows: list[dict[str, Any]] | None,
    data_report: dict[str, Any] | None,
    config: dict[str, Any],
) -> Diagnosis | None:
    """Repeated training rows (over-weighting some examples), or many removed before training."""
    rows = train_rows or []
    counts = Counter(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    repeats = sum(c - 1 for c in counts.values())
    if rows and repeats >= 2 and repeats / len(rows) >= DUPLICATE_FRACTION:
        top = [(json.loads(k), c) for k, c in counts.most_common(SHOWN) if c > 1]
        dedup_off = not config["data"].get("deduplicate", True)
        return Diagnosis(
            kind="duplicates",
            severity="warning",
            summary=(
                f"{repeats} of {len(rows)} training rows ({repeats / len(rows):.0%}) are exact "
                "repeats of other rows."
            ),
            evidence={
                "train_rows": len(rows),
                "repeated_rows": repeats,
                "distinct_rows": len(counts),
                "examples": [{"row": _short(r), "times": c} for r, c in top],
            },
            patch={"data": {"deduplicate": True}} if dedup_off else None,
            rationale=(
                "Repeated rows weigh some examples several times, so the model memorizes them "
                "and the epochs count is misleading. "
                + ("Turn de-duplication back on." if dedup_off else "Remove the repeats.")
            ),
            expected_effect="Each example counts once; less memorization, honest epochs.",
        )
    report = data_report or {}
    removed, read = report.get("duplicates_removed", 0), report.get("rows_read", 0)
    if read and removed / read >= REMOVED_DUPLICATES_FRACTION:
        return Diagnosis(
            kind="duplicates",
            severity="info",
            summary=(
                f"{removed} of {read} source rows ({removed / read:.0%}) were exact duplicates; "
                "they were removed before training, so the real dataset is smaller."
            ),
            evidence={"rows_read": read, "duplicates_removed": removed},
            rationale="Nothing to change in the config; the source data repeats itself.",
            expected_effect="None (informational).",
        )
    return None


def check_leakage(
    train_rows: list[dict[str, Any]] | None,
    eval_rows: list[dict[str, Any]] | None,
    data_report: dict[str, Any] | None,
) -> Diagnosis | None:
    """Eval examples that also appear in the training rows (ignoring case and spacing, by the
    same `near_key` the data check removes overlaps with, so the two agree)."""
    train_texts = {_near(r) for r in train_rows or []}
    leaked = [r for r in eval_rows or [] if _near(r) in train_texts]
    if leaked:
        n_eval = len(eval_rows or [])
        return Diagnosis(
            kind="leakage",
            severity="error",
            summary=(
                f"{len(leaked)} of {n_eval} eval examples ({len(leaked) / n_eval:.0%}) are also "
                "in the training data, so the evaluation measures recall, not generalization."
            ),
            evidence={
                "leaked_eval_rows": len(leaked),
                "eval_rows": n_eval,
                "examples": [_short(r) for r in leaked[:SHOWN]],
            },
            rationale=(
                "No config value can un-train them: remove these rows from the training file "
                "(or give data.eval a held-out file; prepare_data then drops train rows it "
                "contains) and train again."
            ),
            expected_effect="Eval metrics that predict quality on new inputs.",
        )
    overlaps = (data_report or {}).get("overlaps_eval", 0)
    if overlaps:
        return Diagnosis(
            kind="leakage",
            severity="info",
            summary=(
                f"The training source held {overlaps} copies of eval examples; they were removed "
                "before training."
            ),
            evidence={"overlaps_eval": overlaps},
            rationale="Nothing to change for this run; fix the source to keep the counts honest.",
            expected_effect="None (informational).",
        )
    return None


def check_truncation(
    data_report: dict[str, Any] | None, config: dict[str, Any]
) -> Diagnosis | None:
    """Many rows dropped for being longer than data.max_length."""
    report = data_report or {}
    too_long = (report.get("dropped_by_reason") or {}).get("too_long", 0)
    read = report.get("rows_read", 0)
    if not read or too_long / read < TRUNCATION_FRACTION:
        return None
    lengths = [
        int(m.group(1))
        for d in report.get("dropped") or []
        if d.get("reason") == "too_long" and (m := _TOKENS.search(d.get("detail", "")))
    ]
    max_length = config["data"]["max_length"]
    longest = max(lengths) if lengths else None
    # The next power of two that holds the longest dropped row. The model's context window is
    # not known here; MAX_TOKENS is the most data.max_length may be, so it caps the patch.
    needed = max(longest or max_length * 2, max_length + 1)
    new_length = min(1 << (needed - 1).bit_length(), MAX_TOKENS)
    patched = new_length > max_length
    if patched:
        rationale = (
            f"The model never sees the long examples; max_length {new_length} keeps them "
            "(at the cost of memory per batch)."
        )
    else:
        rationale = (
            "The model never sees the long examples, and max_length is already "
            f"{max_length}, the most it may be."
        )
    if not patched or (longest or 0) > new_length:
        # Rows past the cap can only be kept by cutting them down in the data itself.
        rationale += f" Shorten or remove the rows longer than {MAX_TOKENS} tokens."
    return Diagnosis(
        kind="truncation",
        severity="warning",
        summary=(
            f"{too_long} of {read} rows ({too_long / read:.0%}) were cut from the data for being "
            f"longer than max_length {max_length} tokens."
        ),
        evidence={
            "too_long": too_long,
            "rows_read": read,
            "max_length": max_length,
            "longest_dropped_tokens": longest,
        },
        patch={"data": {"max_length": new_length}} if patched else None,
        rationale=rationale,
        expected_effect=(
            "The long examples are trained on; behaviour on long inputs improves."
            if patched
            else "The shortened examples are trained on instead of dropped."
        ),
    )


def check_too_few(
    train_rows: list[dict[str, Any]] | None, data_report: dict[str, Any] | None
) -> Diagnosis | None:
    """Too few distinct training examples to learn a task from."""
    n = (data_report or {}).get("train_rows")
    if n is None:
        n = len({json.dumps(r, sort_keys=True) for r in train_rows or []})
    if not n or n >= FEW_EXAMPLES["info"]:
        return None
    severity = "warning" if n < FEW_EXAMPLES["warning"] else "info"
    return Diagnosis(
        kind="too_few_examples",
        severity=severity,
        summary=f"Only {n} training examples: too few to learn a task that generalizes.",
        evidence={"train_rows": n, "recommended_at_least": FEW_EXAMPLES["info"]},
        rationale=(
            "More epochs cannot replace data: add real examples (or enable data_generation when "
            "a generator is available)."
        ),
        expected_effect="Better generalization once there is more data.",
    )
