"""Chunking and ranking: overlapping character chunks, BM25, and the hybrid score with embeddings.

The hybrid score is `(1 - w) * bm25 / max_bm25 + w * cosine` per query, so lexical matches
(names, numbers, rare terms) and paraphrases both rank well; `w` is `embedding_weight`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Function words carry no topic; dropping them keeps BM25 from rewarding chunks for "the".
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stop words."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Split `text` into chunks of at most `size` characters, neighbours sharing about `overlap`
    characters; cuts fall on whitespace where possible so words stay whole."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    chunks, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        next_start = max(end - overlap, start + 1)
        space = text.find(" ", next_start, end)
        start = space + 1 if space != -1 and overlap else next_start
    return [c for c in chunks if c]


class BM25:
    """Okapi BM25 over tokenized chunks (k1=1.5, b=0.75)."""

    def __init__(self, corpus: Sequence[list[str]], k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.term_counts = [Counter(doc) for doc in corpus]
        self.lengths = [len(doc) for doc in corpus]
        self.avg_length = (sum(self.lengths) / len(corpus)) if corpus else 0.0
        frequency = Counter(term for doc in corpus for term in set(doc))
        n = len(corpus)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}

    def scores(self, query: list[str]) -> list[float]:
        """The BM25 score of every chunk for the query tokens."""
        out = []
        for counts, length in zip(self.term_counts, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg_length or 1.0))
            score = 0.0
            for term in query:
                tf = counts.get(term, 0)
                if tf:
                    score += self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
            out.append(score)
        return out


def hybrid_scores(
    bm25: list[float], cosine: list[float] | None, embedding_weight: float
) -> list[float]:
    """Combine BM25 (scaled to [0, 1] by the query's best) with cosine similarity."""
    top = max(bm25, default=0.0)
    lexical = [s / top if top > 0 else 0.0 for s in bm25]
    if cosine is None or embedding_weight == 0:
        return lexical
    w = embedding_weight
    return [(1 - w) * lex + w * cos for lex, cos in zip(lexical, cosine, strict=True)]
