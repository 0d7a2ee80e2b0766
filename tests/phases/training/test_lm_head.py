"""The LM head's plain form gives TRL's tiled log-probabilities and gradients, and hands over
to the tiled form where it would not fit or could not give what is asked."""

import pytest
import torch
from trl.kernels import ChunkedLogProbFunction

from phases.training import lm_head
from phases.training.lm_head import PlainOrChunkedLogProb, use_plain_head_when_small


def _inputs(tokens: int = 12, vocab: int = 300, hidden: int = 16):
    torch.manual_seed(0)
    h = torch.randn(tokens, hidden, requires_grad=True)
    w = torch.randn(vocab, hidden, requires_grad=True)
    return h, w, torch.randint(0, vocab, (tokens,))


def _scored(function, temperature: float, logit_scale: float, outputs=("log_probs",)):
    h, w, targets = _inputs()
    result = function.apply(h, w, None, targets, temperature, 128, None, logit_scale, outputs)
    (result[0] * torch.linspace(0.5, 1.5, len(targets))).sum().backward()
    return result, h.grad, w.grad


@pytest.mark.parametrize(("temperature", "logit_scale"), [(1.0, 1.0), (0.7, 0.5)])
def test_the_plain_head_gives_the_tiled_log_probabilities_and_gradients(
    temperature: float, logit_scale: float
) -> None:
    PlainOrChunkedLogProb.chunked = ChunkedLogProbFunction
    tiled, tiled_hidden_grad, tiled_weight_grad = _scored(
        ChunkedLogProbFunction, temperature, logit_scale
    )
    plain, hidden_grad, weight_grad = _scored(PlainOrChunkedLogProb, temperature, logit_scale)
    torch.testing.assert_close(plain[0], tiled[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden_grad, tiled_hidden_grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weight_grad, tiled_weight_grad, rtol=1e-4, atol=1e-5)
    assert plain[1:] == (None, None, None, None)


def test_entropy_or_logits_past_the_limit_go_to_the_tiled_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    tiled_apply = ChunkedLogProbFunction.apply

    class Counted:
        @staticmethod
        def apply(hidden, *rest):
            calls.append(hidden.shape[0])
            return tiled_apply(hidden, *rest)

    monkeypatch.setattr(PlainOrChunkedLogProb, "chunked", Counted)
    with_entropy = _scored(PlainOrChunkedLogProb, 1.0, 1.0, ("log_probs", "entropy"))[0]
    assert calls == [12] and with_entropy[1] is not None
    _scored(PlainOrChunkedLogProb, 1.0, 1.0)
    assert calls == [12]  # 12 x 300 logits: plain
    monkeypatch.setattr(lm_head, "MAX_LOGITS", 12 * 300 - 1)
    _scored(PlainOrChunkedLogProb, 1.0, 1.0)
    assert calls == [12, 12]


def test_the_fused_head_uses_the_plain_form_once_switched_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trl.trainer.utils as trl_utils

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", ChunkedLogProbFunction)
    use_plain_head_when_small()
    use_plain_head_when_small()  # twice: still wraps TRL's own class, not itself
    assert trl_utils._ChunkedLogProbFunction is PlainOrChunkedLogProb
    assert PlainOrChunkedLogProb.chunked is ChunkedLogProbFunction
