"""Corpus BLEU (sacrebleu) as an `evaluate` metric, reported in 0..1.

Ships inside the project so `evaluate.load("<this dir>")` works offline.
"""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = "Corpus-level BLEU from sacrebleu, divided by 100 so it lies in 0..1."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated strings.
    references: list of reference strings, one per prediction.
    tokenize: sacrebleu tokenizer name (default "13a").
    smooth_method: sacrebleu smoothing ("exp" by default; "floor", "add-k", "none").
    lowercase: compare case-insensitively (default False).
    use_effective_order: ignore n-gram orders longer than the outputs (default True, so short
        answers such as "42" can score; standard corpus BLEU uses False).
Returns:
    {"bleu": float in 0..1, "precisions": [4 floats in 0..1], "brevity_penalty": float,
     "sys_len": int, "ref_len": int}
"""


class Bleu(evaluate.Metric):
    """Corpus BLEU with a single reference per prediction."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Post, 2018. A Call for Clarity in Reporting BLEU Scores.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        tokenize="13a",
        smooth_method="exp",
        lowercase=False,
        use_effective_order=True,
    ):
        result = sacrebleu.corpus_bleu(
            list(predictions),
            [list(references)],
            tokenize=tokenize,
            smooth_method=smooth_method,
            lowercase=lowercase,
            use_effective_order=use_effective_order,
        )
        return {
            "bleu": min(1.0, result.score / 100.0),  # float noise can give 100.00000000000004
            "precisions": [p / 100.0 for p in result.precisions],
            "brevity_penalty": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
        }
