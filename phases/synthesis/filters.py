"""Checks on generated examples, inferred from the seeds: format, length, near duplicates
(MinHash) and a quality score.

The seed profile records what every seed has in common — outputs that are JSON objects with the
same keys, the range of field lengths, outputs whose words come from the input, and how each
JSON field is judged (`FieldRule`: a closed label set, a number in a plausible range, or free
text) — and a generated example is held to the same standard.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from phases.synthesis.prompts import LABELS, example_fields

DROP_REASONS = {
    "unparseable": "not in the example format",
    "format": "output does not match the seeds' format",
    "too_short": "shorter than the seeds allow",
    "too_long": "longer than the seeds allow",
    "duplicate": "exact duplicate of a seed or another generated example",
    "near_duplicate": "near duplicate of a seed or another generated example",
    "eval_overlap": "same as or near an eval example (leakage)",
    "low_quality": "quality score below data_generation.min_quality",
}
_WORD = re.compile(r"\w+", re.UNICODE)
_SANE_CHAR = re.compile(r"[\w\s.,;:!?'\"()\[\]{}/@#%&*+=<>_~|\\`^$€£-]", re.UNICODE)


@dataclass
class SeedProfile:
    """What the seeds have in common, per field (in `LABELS[kind]` order)."""

    kind: str
    min_chars: list[int]
    max_chars: list[int]
    json_keys: list[str] | None = None
    extractive: bool = False
    extractive_keys: list[str] = field(default_factory=list)
    field_rules: dict[str, FieldRule] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the generation report."""
        return {
            "kind": self.kind,
            "chars": {
                label: [lo, hi]
                for label, lo, hi in zip(
                    LABELS[self.kind], self.min_chars, self.max_chars, strict=True
                )
            },
            "json_keys": self.json_keys,
            "extractive": self.extractive,
            "extractive_keys": self.extractive_keys,
        }

    def field_rules_dict(self) -> dict[str, dict[str, Any]]:
        """How each JSON output field is judged, JSON-ready, for the generation report."""
        return {key: rule.to_dict() for key, rule in self.field_rules.items()}


def infer_profile(seeds: list[dict[str, Any]], kind: str) -> SeedProfile:
    """The format rules every generated example of `kind` must follow, read off the seeds."""
    fields = [example_fields(r, kind) for r in seeds]
    columns = list(zip(*fields, strict=True))
    profile = SeedProfile(
        kind=kind,
        min_chars=[min(len(v) for v in col) for col in columns],
        max_chars=[max(len(v) for v in col) for col in columns],
    )
    if kind != "text":
        outputs = [f[1] for f in fields]
        keys = [_json_keys(o) for o in outputs]
        if keys and all(k is not None and k == keys[0] for k in keys):
            profile.json_keys = keys[0]
            profile.extractive_keys = [
                key for key in keys[0] if all(_value_in_input(f[0], f[1], key) for f in fields)
            ]
            parsed = [json.loads(o) for o in outputs]
            profile.field_rules = {k: field_rule([o[k] for o in parsed]) for k in keys[0]}
        profile.extractive = all(grounding(f[0], f[1]) >= 0.9 for f in fields)
    return profile


# A field is a closed label set only when its seed values are few and repeat: at most
# max(3, seeds // 5) distinct values, each seen twice or more on average. The floor of three keeps
# a three-way sentiment over the README's ten seeds a label set; names and cities, mostly unique,
# never are. Numbers never are either: a new age is a new entity, not a misspelt label.
_MIN_LABELS = 3
_SEEDS_PER_LABEL = 5
_MIN_MEAN_REPEATS = 2


@dataclass(frozen=True)
class LabelRule:
    """A closed label set: the value must be one of `values`, with the same JSON type."""

    values: list[Any]

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule, or None."""
        if any(type(value) is type(label) and value == label for label in self.values):
            return None
        return f"{value!r} is not one of the seeds' labels {self.values}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the generation report."""
        return {"rule": "label", "values": self.values}


@dataclass(frozen=True)
class NumberRule:
    """A number (`type` "int": a whole one) within [low, high]: the seeds' range `seen` widened
    by its span on each side, and not across zero where the seeds' values all stay on one side."""

    type: str
    low: float
    high: float
    seen: tuple[float, float]

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule, or None."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is a JSON {_json_type(value)}, not a number like the seeds'"
        if self.type == "int" and not isinstance(value, int):
            return f"{value!r} is not a whole number like the seeds'"
        if not (math.isfinite(value) and self.low <= value <= self.high):
            lo, hi = self.seen
            return (
                f"{value!r} is outside the plausible range [{self.low}, {self.high}] "
                f"(the seeds' {lo}..{hi} widened by their span)"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the generation report."""
        return {"rule": "number", "type": self.type, "range": [self.low, self.high]}


@dataclass(frozen=True)
class TextRule:
    """Free text (mostly unique values such as names and cities, or anything not a label or a
    number): the value keeps one of the seeds' JSON `types`, and a string is non-empty when
    every seed's is."""

    types: list[str]
    non_empty: bool

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule, or None."""
        if _json_type(value) not in self.types:
            types = " or ".join(self.types)
            return f"{value!r} is a JSON {_json_type(value)}, not {types} like the seeds'"
        if self.non_empty and isinstance(value, str) and not value.strip():
            return "is empty; every seed has a value"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the generation report."""
        return {"rule": "free text", "types": self.types, "non_empty": self.non_empty}


FieldRule = LabelRule | NumberRule | TextRule


def field_rule(values: list[Any]) -> FieldRule:
    """How a JSON field whose seed values are `values` is judged (thresholds above)."""
    if all(isinstance(v, bool) for v in values):
        return LabelRule([False, True])  # a bool is a label; both are plausible
    if all(_is_number(v) for v in values):
        return _number_rule(values)
    if all(isinstance(v, str) for v in values) and _few_and_repeated(values):
        return LabelRule(sorted(set(values)))
    non_empty = all(v.strip() for v in values if isinstance(v, str))
    return TextRule(sorted({_json_type(v) for v in values}), non_empty)


def _few_and_repeated(values: list[Any]) -> bool:
    distinct = len(set(values))
    few = distinct <= max(_MIN_LABELS, len(values) // _SEEDS_PER_LABEL)
    return few and len(values) >= _MIN_MEAN_REPEATS * distinct


def _number_rule(values: list[int | float]) -> NumberRule:
    lo, hi = min(values), max(values)
    span = hi - lo or max(abs(hi), 1)  # one repeated value: widen by its own size
    low = max(lo - span, 0) if lo >= 0 else lo - span
    high = min(hi + span, 0) if hi <= 0 else hi + span
    if all(isinstance(v, int) for v in values):
        return NumberRule("int", low, high, (lo, hi))
    return NumberRule("float", round(low, 9), round(high, 9), (lo, hi))  # no 0.1 + 0.2 noise


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value: Any) -> str:
    """The JSON name of `value`'s type, as a user reads it in an error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _value_in_input(source: str, output: str, key: str) -> bool:
    """Whether the words of the JSON output's `key` value all occur in the input."""
    try:
        value = json.loads(output).get(key)
    except (ValueError, AttributeError, RecursionError):
        return False
    words = _WORD.findall(str(value).lower())
    available = set(_WORD.findall(source.lower()))
    return bool(words) and all(w in available for w in words)


def _json_keys(text: str) -> list[str] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nested past the parser's depth: not a JSON object
        return None
    return sorted(value) if isinstance(value, dict) else None


def grounding(source: str, output: str) -> float:
    """Share of the output's words (JSON keys aside) that also occur in the source."""
    words = _WORD.findall(_json_values_text(output).lower())
    if not words:
        return 1.0
    available = set(_WORD.findall(source.lower()))
    return sum(w in available for w in words) / len(words)


def _json_values_text(text: str) -> str:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, dict):
        return " ".join(str(v) for v in value.values())
    return text


def format_problem(record: dict[str, Any], profile: SeedProfile) -> str | None:
    """Why the record breaks the seeds' format, or None."""
    if profile.json_keys is None:
        return None
    output = example_fields(record, profile.kind)[1]
    keys = _json_keys(output)
    if keys is None:
        return "the seeds' outputs are JSON objects; this output is not"
    if keys != profile.json_keys:
        return f"JSON keys {keys} differ from the seeds' {profile.json_keys}"
    value = json.loads(output)
    for key, rule in profile.field_rules.items():
        problem = rule.problem(value[key])
        if problem:
            return f"{key} {problem}"
    return None


def length_problem(record: dict[str, Any], profile: SeedProfile) -> tuple[str, str] | None:
    """(reason, detail) when a field is far outside the seeds' lengths: under a quarter of the
    shortest seed's, or over three times the longest's."""
    values = example_fields(record, profile.kind)
    for label, value, lo, hi in zip(
        LABELS[profile.kind], values, profile.min_chars, profile.max_chars, strict=True
    ):
        if len(value) < max(1, lo // 4):
            return "too_short", f"{label} has {len(value)} characters; seeds have {lo} or more"
        if len(value) > 3 * hi:
            return "too_long", f"{label} has {len(value)} characters; seeds have {hi} at most"
    return None


def quality_score(record: dict[str, Any], profile: SeedProfile) -> tuple[float, dict[str, float]]:
    """A score in [0, 1]: the product of the parts below, so any one defect pulls it down.

    - repetition: share of word 3-grams that are not repeats (degenerate loops score low)
    - characters: share of ordinary characters (letters, digits, punctuation, spaces)
    - grounding: for extractive seeds, share of output words found in the input; for JSON
      outputs whose seeds always copy some keys' values from the input (a name, an age), 1 when
      every such value is in the input and 0 otherwise: an age the input never states is a
      wrong label, not a partly right one
    - distinct: the output is not a copy of the input
    """
    values = example_fields(record, profile.kind)
    text = "\n".join(values)
    words = _WORD.findall(text.lower())
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    parts = {
        "repetition": len(set(grams)) / len(grams) if grams else 1.0,
        "characters": len(_SANE_CHAR.findall(text)) / len(text) if text else 0.0,
    }
    if profile.kind != "text":
        if profile.extractive_keys:
            copied = [_value_in_input(values[0], values[1], k) for k in profile.extractive_keys]
            parts["grounding"] = float(all(copied))
        elif profile.extractive:
            parts["grounding"] = grounding(values[0], values[1])
        parts["distinct"] = 0.0 if values[0].strip() == values[1].strip() else 1.0
    score = 1.0
    for value in parts.values():
        score *= value
    return round(score, 4), {k: round(v, 3) for k, v in parts.items()}


class MinHasher:
    """MinHash signatures of character 5-gram sets; the share of equal slots estimates Jaccard.

    Each slot hashes every 5-gram's 64-bit hash xor a random mask through a splitmix64-style
    mixer (uint64 arithmetic wraps, which is what the mixer wants) and keeps the minimum.
    """

    def __init__(self, num_perm: int = 64, seed: int = 1):
        import numpy as np

        rng = np.random.default_rng(seed)
        self.masks = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64)

    def signature(self, text: str) -> Any:
        """The signature of `text` (lower-cased, whitespace collapsed)."""
        import numpy as np

        text = " ".join(text.lower().split())
        grams = {text[i : i + 5] for i in range(max(1, len(text) - 4))}
        hashes = np.array(
            [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest()) for g in grams],
            dtype=np.uint64,
        )
        with np.errstate(over="ignore"):
            mixed = hashes[:, None] ^ self.masks[None, :]
            mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            mixed ^= mixed >> np.uint64(31)
        return mixed.min(axis=0)


def max_similarity(signature: Any, others: list[Any]) -> float:
    """The highest estimated Jaccard similarity between `signature` and any of `others`."""
    if not others:
        return 0.0
    import numpy as np

    return float((np.stack(others) == signature).mean(axis=1).max())


def normalized_text(text: str) -> str:
    """Case- and whitespace-insensitive form, for exact comparisons of inputs."""
    return " ".join(text.lower().split())
