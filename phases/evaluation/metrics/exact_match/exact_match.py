"""Exact match rate as an `evaluate` metric, optionally after normalizing case and whitespace.

Ships inside the project so `evaluate.load("<this dir>")` works offline.
"""

import re

import datasets
import evaluate

_DESCRIPTION = "Fraction of predictions equal to their reference."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated strings.
    references: list of reference strings, one per prediction.
    normalize: before comparing, strip both ends, collapse runs of whitespace to one space and
        lowercase (default True).
    use_aggregator: True returns the mean; False returns one 0.0/1.0 per example.
Returns:
    {"exact_match": float in 0..1} (or a list of floats without aggregation).
"""


def normalize_text(text: str) -> str:
    """Lowercased, with surrounding whitespace stripped and inner runs collapsed to one space."""
    return re.sub(r"\s+", " ", text).strip().lower()


class ExactMatch(evaluate.Metric):
    """Exact string match rate."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, use_aggregator=True):
        if normalize:
            predictions = [normalize_text(p) for p in predictions]
            references = [normalize_text(r) for r in references]
        matches = [float(p == r) for p, r in zip(predictions, references, strict=True)]
        if not use_aggregator:
            return {"exact_match": matches}
        return {"exact_match": sum(matches) / len(matches) if matches else 0.0}
