"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures as an `evaluate` metric, computed with rouge-score.

Ships inside the project so `evaluate.load("<this dir>")` works offline (the hub script cannot
be fetched without a network).
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

_DESCRIPTION = "ROUGE F-measures (rouge1, rouge2, rougeL) between predictions and references."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated strings.
    references: list of reference strings, one per prediction.
    rouge_types: which of "rouge1", "rouge2", "rougeL" to report (all by default).
    use_stemmer: apply the Porter stemmer before matching (default False).
    use_aggregator: True returns the mean F-measure per type; False returns a list per type.
Returns:
    dict from rouge type to a float in 0..1 (or a list of floats without aggregation).
"""
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class Rouge(evaluate.Metric):
    """ROUGE F-measures averaged over examples."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        rouge_types=ROUGE_TYPES,
        use_stemmer=False,
        use_aggregator=True,
    ):
        scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
        per_example = [
            scorer.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)
        ]
        fmeasures = {t: [s[t].fmeasure for s in per_example] for t in rouge_types}
        if not use_aggregator:
            return fmeasures
        # The plain mean, not the hub script's bootstrap mid-point: it is what users re-compute.
        return {t: (sum(v) / len(v) if v else 0.0) for t, v in fmeasures.items()}
