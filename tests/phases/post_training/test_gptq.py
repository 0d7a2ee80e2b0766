"""GPTQ rounding for Q8_0: valid Q8_0 blocks that GGUF readers decode, a smaller output error
than round-to-nearest on the inputs it was calibrated on, and Hessians that count only real
(unpadded) tokens, one matrix per distinct input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from phases.post_training import gptq as gptq_module
from phases.post_training.gptq import (
    block_groups,
    gptq_q8_0,
    gptq_q8_0_tensors,
    input_hessians,
    q8_0_blocks,
)


def _correlated_inputs(rows: int, width: int, seed: int = 0) -> torch.Tensor:
    """Inputs whose columns move together and differ in scale, as a layer's activations do."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(width, width, generator=generator) / width**0.5
    scales = torch.logspace(-1, 1, width)
    return (torch.randn(rows, width, generator=generator) @ mixing) * scales


def _decoded(blocks: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    return torch.from_numpy(dequantize(blocks, GGMLQuantizationType.Q8_0).reshape(shape))


def test_gptq_blocks_decode_and_beat_round_to_nearest_on_the_layer_output() -> None:
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(48, 96, generator=generator) * 0.05
    inputs = _correlated_inputs(2000, 96)
    hessian = inputs.T @ inputs / inputs.shape[0]
    ours = _decoded(gptq_q8_0(weight, hessian), tuple(weight.shape))
    nearest = _decoded(quantize(weight.numpy(), GGMLQuantizationType.Q8_0), tuple(weight.shape))

    def error(decoded: torch.Tensor) -> float:
        return float(((inputs @ (weight - decoded).T) ** 2).mean())

    assert error(ours) < 0.5 * error(nearest), (error(ours), error(nearest))
    # still a rounding of the same weights: every weight within a few steps of its block's scale
    step = weight.reshape(48, -1, 32).abs().amax(-1, keepdim=True) / 127
    assert ((weight - ours).reshape(48, -1, 32).abs() <= 8 * step).all()


def test_inputs_that_never_fire_get_zero_weights_and_no_nan() -> None:
    weight = torch.randn(8, 64) * 0.1
    inputs = _correlated_inputs(500, 64)
    inputs[:, 5] = 0
    decoded = _decoded(gptq_q8_0(weight, inputs.T @ inputs / 500), (8, 64))
    assert torch.isfinite(decoded).all() and (decoded[:, 5] == 0).all()


def test_q8_0_blocks_are_ggmls_layout() -> None:
    values = np.arange(-64, 64, dtype=np.int8).reshape(2, 64)
    scales = np.array([[0.5, 0.25], [1.0, 2.0]], dtype=np.float32)
    blocks = q8_0_blocks(values, scales)
    assert blocks.dtype == np.uint8 and blocks.shape == (2, 2 * 34)
    expected = values.reshape(2, 2, 32) * scales[..., None]
    assert np.array_equal(dequantize(blocks, GGMLQuantizationType.Q8_0).reshape(2, 2, 32), expected)


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_hessians_count_real_tokens_once_per_input(tiny_model) -> None:
    short, long = [5, 9, 13], [7, 3, 11, 20, 4, 8, 2]
    together = input_hessians(tiny_model, [short, long])
    one, other = input_hessians(tiny_model, [short]), input_hessians(tiny_model, [long])
    names = [n for n, m in tiny_model.named_modules() if isinstance(m, torch.nn.Linear)]
    blocks = [n for n in names if ".layers." in n]
    assert set(together) == set(blocks)  # every block linear, not the output head
    first = blocks[0].rsplit(".", 2)[0]
    q, k, v = (together[f"{first}.self_attn.{p}_proj"] for p in "qkv")
    assert q is k is v
    for name in blocks:
        # padding the short sequence in a batch with the long one changes nothing
        weighted = (3 * one[name] + 7 * other[name]) / 10
        torch.testing.assert_close(together[name], weighted, rtol=1e-4, atol=1e-6)
        assert torch.allclose(together[name], together[name].T, atol=1e-6)


def test_a_small_hessian_budget_takes_more_passes_and_gives_the_same_blocks(
    tiny_model, monkeypatch
) -> None:
    blocks = len(tiny_model.get_decoder().layers)
    assert block_groups(tiny_model) == [list(range(blocks))]
    assert block_groups(tiny_model, budget=1) == [[i] for i in range(blocks)]
    sequences = [[5, 9, 13, 2], [7, 3, 11, 20, 4]]
    whole = gptq_q8_0_tensors(tiny_model, sequences)
    monkeypatch.setattr(gptq_module, "block_groups", lambda model: block_groups(model, budget=1))
    parts = gptq_q8_0_tensors(tiny_model, sequences)
    assert whole.keys() == parts.keys() and len(whole) == 7 * blocks
    assert all(np.array_equal(whole[name], parts[name]) for name in whole)


def test_a_weight_whose_hessian_cannot_be_factored_is_left_to_nearest_rounding(
    tiny_model, monkeypatch
) -> None:
    real = input_hessians

    def broken(model, sequences, blocks=None):
        hessians = dict(real(model, sequences, blocks))
        names = sorted(hessians)
        hessians[names[0]] = -torch.eye(hessians[names[0]].shape[0])  # not positive definite
        hessians[names[1]] = torch.full_like(hessians[names[1]], float("nan"))
        return hessians

    monkeypatch.setattr(gptq_module, "input_hessians", broken)
    encoded = gptq_q8_0_tensors(tiny_model, [[5, 9, 13, 2]])
    names = sorted(real(tiny_model, [[5, 9]]))
    assert f"{names[0]}.weight" not in encoded and f"{names[1]}.weight" not in encoded
    assert f"{names[2]}.weight" in encoded
