"""What the kept examples add over the seeds: per field, how many distinct values they hold and
how many of those no seed has (new names, new cities), for the generation report and the data
gate.

Fields are the JSON output's keys when the seeds' outputs are JSON objects with the same keys
(`name`, `age`, `city`), else the example's labelled fields (`Input`, `Output`).
"""

from __future__ import annotations

import json
from typing import Any

from phases.synthesis.filters import SeedProfile, normalized_text
from phases.synthesis.prompts import LABELS, example_fields

_NEW_SHOWN = 5


def field_stats(
    kept: list[dict[str, Any]], seeds: list[dict[str, Any]], profile: SeedProfile
) -> dict[str, dict[str, Any]]:
    """Per field: `distinct` values among the kept examples, how many of them are `new` (in no
    seed), and the first few new ones (`new_examples`)."""
    kept_values, seed_values = _values(kept, profile), _values(seeds, profile)
    stats: dict[str, dict[str, Any]] = {}
    for name, values in kept_values.items():
        known = {_identity(v) for v in seed_values.get(name, [])}
        first_seen: dict[str, Any] = {}
        for value in values:
            first_seen.setdefault(_identity(value), value)
        new = [value for key, value in first_seen.items() if key not in known]
        stats[name] = {
            "distinct": len(first_seen),
            "new": len(new),
            "new_examples": new[:_NEW_SHOWN],
        }
    return stats


def _values(records: list[dict[str, Any]], profile: SeedProfile) -> dict[str, list[Any]]:
    """Each field's values over `records`, by field name."""
    if profile.json_keys is not None:
        outputs = [json.loads(example_fields(r, profile.kind)[1]) for r in records]
        return {key: [o[key] for o in outputs] for key in profile.json_keys}
    labels = LABELS[profile.kind]
    columns = list(zip(*(example_fields(r, profile.kind) for r in records), strict=True))
    return {
        label: list(column)
        for label, column in zip(labels, columns or [()] * len(labels), strict=True)
    }


def _identity(value: Any) -> str:
    """A comparable key: strings case- and space-insensitive ("new york" is "New York")."""
    if isinstance(value, str):
        return json.dumps(normalized_text(value))
    return json.dumps(value, sort_keys=True)


def field_stats_line(stats: dict[str, dict[str, Any]]) -> str:
    """'name 30 distinct (28 new), city 25 distinct (20 new)' for the gate's message."""
    return ", ".join(
        f"{name} {s['distinct']} distinct ({s['new']} new)" for name, s in stats.items()
    )
