"""Per-row scores that do not reward copying a format: exact match, JSON validity, field accuracy.

ROUGE on JSON answers mostly counts the braces, quotes and keys every answer shares, so a model
that writes `{"name": "Ann", "age": 30, "city": "Paris"}` for every input scores well. These
scores compare what was said instead:

- exact_match: 1 when the answer equals the reference. A reference that parses as a JSON object
  or array is compared as parsed JSON (key order and whitespace do not matter, every value must
  be equal, `true` is not `1`); any other reference is compared as text (after lowercasing and
  collapsing whitespace when normalizing).
- json_valid: 1 when the answer parses as JSON of the reference's type (object or array).
- json_field_accuracy: the share of the reference object's top-level keys whose value in the
  answer is equal (an answer that is not a JSON object scores 0; an array reference scores
  1 or 0 as a whole).

json_valid and json_field_accuracy are averaged over the rows whose reference is a JSON object or
array; the other rows have no such score.
"""

import json
import re
from typing import Any

JSON_ROW_METRICS = ("json_valid", "json_field_accuracy")
# The share of references that must be JSON objects for the JSON metrics to be added by default.
JSON_DEFAULT_SHARE = 0.9
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_MISSING = object()


def parse_structured(text: str | None) -> Any:
    """The JSON object or array `text` holds (a ```json fence around it is allowed), else None."""
    if text is None:
        return None
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        value = json.loads(stripped, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _not_json(name: str) -> Any:
    """Python's parser reads NaN and Infinity; JSON has no such values."""
    raise ValueError(f"{name} is not JSON")


def json_equal(left: Any, right: Any) -> bool:
    """Equality of parsed JSON values that, unlike `==`, tells `true` from `1`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right


def normalize_text(text: str) -> str:
    """Lowercased, stripped, inner whitespace collapsed (as the shipped exact_match module)."""
    return re.sub(r"\s+", " ", text).strip().lower()


def row_exact_match(prediction: str, reference: str, *, normalize: bool = True) -> float:
    """1.0 when the prediction equals the reference (as parsed JSON for a JSON reference)."""
    expected = parse_structured(reference)
    if expected is not None:
        return float(json_equal(parse_structured(prediction), expected))
    if normalize:
        return float(normalize_text(prediction) == normalize_text(reference))
    return float(prediction == reference)


def row_json_valid(prediction: str, reference: str) -> float | None:
    """1.0 when the prediction parses as JSON of the reference's type; None for a non-JSON
    reference."""
    expected = parse_structured(reference)
    if expected is None:
        return None
    return float(type(parse_structured(prediction)) is type(expected))


def row_json_field_accuracy(prediction: str, reference: str) -> float | None:
    """Share of the reference object's top-level keys answered with the equal value; None for a
    non-JSON reference."""
    expected = parse_structured(reference)
    if expected is None:
        return None
    got = parse_structured(prediction)
    if not isinstance(expected, dict) or not expected:
        return float(json_equal(got, expected))
    if not isinstance(got, dict):
        return 0.0
    right = sum(json_equal(got.get(key, _MISSING), value) for key, value in expected.items())
    return right / len(expected)


ROW_SCORERS = {"json_valid": row_json_valid, "json_field_accuracy": row_json_field_accuracy}


def json_reference_share(references: list[str | None]) -> float:
    """The share of references that are JSON objects (0.0 for no references)."""
    given = [r for r in references if r is not None]
    if not given:
        return 0.0
    return sum(isinstance(parse_structured(r), dict) for r in given) / len(given)


def json_metric_value(name: str, predictions: list[str], references: list[str]) -> float:
    """Mean of a JSON row metric over the rows with a JSON reference (0.0 when there is none)."""
    scores = [ROW_SCORERS[name](p, r) for p, r in zip(predictions, references, strict=True)]
    given = [s for s in scores if s is not None]
    return sum(given) / len(given) if given else 0.0


def row_scores(
    prediction: str, reference: str, names: list[str], *, normalize: bool = True
) -> dict[str, float]:
    """exact_match, and each of `names` that is a JSON row metric and applies to this row."""
    scores = {"exact_match": row_exact_match(prediction, reference, normalize=normalize)}
    for name in names:
        if name in ROW_SCORERS:
            value = ROW_SCORERS[name](prediction, reference)
            if value is not None:
                scores[name] = value
    return scores
