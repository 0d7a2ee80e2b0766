"""The LM head's log-probabilities in one product when the batch's logits are small (CPU SFT).

TRL's fused head projects the vocabulary in tiles, folds each tile into running log-sum-exp
statistics with several passes of element-wise torch ops (off Triton), and recomputes every
tile in the backward, so that the `[tokens, vocab]` logits never exist at once: right for a
GPU batch of thousands of tokens. Scoring a CPU batch's ~160 completion tokens against a 49k
vocabulary, those logits are 31 MB, and the recomputed product and the folds took about 9% of
a SmolLM2 training step (torch profiler). Here the head is one product and one fused
log-softmax, kept for the backward; past `MAX_LOGITS` elements, or for an output the plain
form does not give (entropy and the like), TRL's tiled function runs as before.
"""

import torch
import torch.nn.functional as F

# 64 M float32 logits: 256 MB, and the log-softmax keeps as much again for its backward.
MAX_LOGITS = 64 * 2**20


class PlainOrChunkedLogProb:
    """Drop-in for TRL's `ChunkedLogProbFunction`: the same `apply` arguments and results."""

    chunked = None  # TRL's class, set by `use_plain_head_when_small`

    @classmethod
    def apply(
        cls,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        temperature: float,
        chunk_size: int,
        final_logit_softcapping: float | None = None,
        logit_scale: float = 1.0,
        outputs: tuple[str, ...] = ("log_probs",),
    ):
        """Per-token log-probabilities of `targets` under `hidden @ weight.T`, then four Nones."""
        small = hidden.shape[0] * weight.shape[0] <= MAX_LOGITS
        plain = small and tuple(outputs) == ("log_probs",) and final_logit_softcapping is None
        if not plain or hidden.device.type != "cpu":
            args = (temperature, chunk_size, final_logit_softcapping, logit_scale, outputs)
            return cls.chunked.apply(hidden, weight, bias, targets, *args)
        logits = F.linear(hidden, weight, bias).float()
        if logit_scale / temperature != 1:
            logits = logits * (logit_scale / temperature)
        log_probs = -F.cross_entropy(logits, targets, reduction="none")
        return log_probs, None, None, None, None


def use_plain_head_when_small() -> None:
    """Have TRL's fused LM head (`add_fused_lm_head`) score small CPU batches in one product."""
    import trl.trainer.utils as trl_utils

    current = getattr(trl_utils, "_ChunkedLogProbFunction", None)
    if current is None or current is PlainOrChunkedLogProb:
        return
    PlainOrChunkedLogProb.chunked = current
    trl_utils._ChunkedLogProbFunction = PlainOrChunkedLogProb
