"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures as an `evaluate` metric, computed with rouge-score.

Ships inside the project so `evaluate.load("<this dir>")` works offline (the hub script cannot
be fetched without a network).
"""

import re
import unicodedata

import datasets
import evaluate
from rouge_score import rouge_scorer
from rouge_score.tokenizers import Tokenizer

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

# Scripts written without spaces between words: each character is a token (as ROUGE for
# Chinese and Japanese is usually computed), since there are no words to split on.
_UNSPACED = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
)


def _words(text: str) -> list[str]:
    """Runs of letters, marks and digits (Unicode categories L, M, N), and each character of
    an unspaced script on its own."""
    tokens, word = [], []
    for char in text:
        if _UNSPACED.match(char):
            tokens += ["".join(word), char] if word else [char]
            word = []
        elif unicodedata.category(char)[0] in "LMN":
            word.append(char)
        elif word:
            tokens.append("".join(word))
            word = []
    return [*tokens, "".join(word)] if word else tokens


class WordTokenizer(Tokenizer):
    """rouge-score's tokenizer for every script, not only a-z and 0-9.

    rouge-score keeps only `[a-z0-9]+` runs, so a Cyrillic, Greek or Arabic answer had no
    tokens at all (ROUGE 0 for an exact answer, 1 for "Кошка 5" against "Собака 5": only the
    digit was left) and Chinese or Japanese had none either. Here a token is a run of letters
    and digits of any script with their marks (lower-cased, NFC), or one character of an
    unspaced script. On ASCII text the tokens are exactly rouge-score's. The stemmer, an English
    one, touches only ASCII words longer than 3 characters, as rouge-score's does.
    """

    def __init__(self, use_stemmer: bool = False) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _words(unicodedata.normalize("NFC", text).lower())
        if self._stemmer is None:
            return tokens
        return [self._stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


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
        scorer = rouge_scorer.RougeScorer(
            list(rouge_types), tokenizer=WordTokenizer(use_stemmer=use_stemmer)
        )
        per_example = [
            scorer.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)
        ]
        fmeasures = {t: [s[t].fmeasure for s in per_example] for t in rouge_types}
        if not use_aggregator:
            return fmeasures
        # The plain mean, not the hub script's bootstrap mid-point: it is what users re-compute.
        return {t: (sum(v) / len(v) if v else 0.0) for t, v in fmeasures.items()}
