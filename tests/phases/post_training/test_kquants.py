"""Our Q4_K / Q6_K encoders write blocks that `gguf`'s own decoder (the one transformers reads
GGUF files with) turns back into the weights, within each type's expected error; and the
q4_k_m recipe picks llama.cpp's type for each tensor."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

from phases.post_training.gguf_export import tensor_type
from phases.post_training.kquants import quantize_q4_k, quantize_q6_k


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.normal(scale=0.05, size=(64, 512)).astype(np.float32)
    w[0] = 0.0  # an all-zero row
    w[1] = 0.3  # a constant row
    w[2, :256] = rng.uniform(0.1, 0.2, 256)  # a positive block: its min is not at zero
    return w


@pytest.mark.parametrize(
    ("encode", "qtype", "bytes_per_block", "max_error"),
    [(quantize_q4_k, T.Q4_K, 144, 0.09), (quantize_q6_k, T.Q6_K, 210, 0.025)],
)
def test_blocks_decode_back_to_the_weights(weights, encode, qtype, bytes_per_block, max_error):
    blocks = encode(weights)
    assert blocks.dtype == np.uint8 and blocks.shape == (64 * 2, bytes_per_block)
    back = dequantize(blocks.reshape(64, -1), qtype)
    assert back.shape == weights.shape
    relative = np.sqrt(((back - weights) ** 2).mean()) / np.sqrt((weights**2).mean())
    assert relative < max_error, relative
    assert np.all(back[0] == 0.0)
    assert np.allclose(back[1], 0.3, rtol=0.02)
    assert np.abs(back[2, :256] - weights[2, :256]).max() < 0.01
    # more bits, less error: a broken packing (scales swapped, nibbles misplaced) fails here
    coarse = np.round(weights / 0.05 * 2) / 2 * 0.05
    assert np.abs(back - weights).mean() < np.abs(coarse - weights).mean()


def test_q6_k_is_four_times_closer_than_q4_k(weights) -> None:
    q4 = dequantize(quantize_q4_k(weights).reshape(64, -1), T.Q4_K)
    q6 = dequantize(quantize_q6_k(weights).reshape(64, -1), T.Q6_K)
    assert np.abs(q6 - weights).mean() * 3 < np.abs(q4 - weights).mean()


def test_the_q4_k_m_recipe_follows_llama_cpp() -> None:
    layers = 16  # more bits for layers 0-1, 14-15 and every third from 2: 4, 7, 10, 13

    def kind(name, shape=(1536, 1536), tied=False):
        return tensor_type(name, shape, "q4_k_m", layers, tied=tied)

    assert kind("blk.3.attn_q.weight") == T.Q4_K
    assert kind("blk.0.attn_v.weight") == T.Q6_K and kind("blk.4.ffn_down.weight") == T.Q6_K
    assert kind("blk.5.attn_v.weight") == T.Q4_K and kind("blk.15.ffn_down.weight") == T.Q6_K
    assert kind("output.weight") == T.Q6_K and kind("token_embd.weight") == T.Q4_K
    assert kind("token_embd.weight", tied=True) == T.Q6_K
    # rows that do not fill 256-weight super-blocks fall back as llama.cpp's do
    assert kind("blk.3.attn_q.weight", (576, 576)) == T.Q5_0
    assert kind("blk.0.attn_v.weight", (192, 576)) == T.Q8_0
    assert kind("blk.0.attn_norm.weight", (576,)) == T.F32
    assert tensor_type("blk.0.attn_q.weight", (8, 8), "q8_0", 2, tied=True) == T.Q8_0
    assert tensor_type("blk.0.attn_q.weight", (8, 8), "bf16", 2, tied=True) == T.BF16
