"""Q4_K and Q6_K encoders (the `gguf` package decodes these types but cannot write them).

Blocks of 256 weights, laid out byte for byte as llama.cpp's `block_q4_K` / `block_q6_K` (the
layouts `gguf.quants.Q4_K/Q6_K.dequantize_blocks` read). The scale search follows llama.cpp's
reference quantizers (`make_qkx2_quants` for Q4_K's scale and min per 32 weights,
`make_qx_quants` for Q6_K's scale per 16), vectorized over every block of a tensor at once.
The tests check the round trip through `gguf`'s own decoder.
"""

from __future__ import annotations

import numpy as np

QK_K = 256


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, as C's `roundf`/`nearest_int` do (numpy rounds half to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _f16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).reshape(-1, 1).view(np.uint8)


def _scale_and_min(x: np.ndarray, weights: np.ndarray, nmax: int, steps: int = 20):
    """Per row of `x` (rows of 32): (scale, min) so that x ≈ scale * q + min with q in
    [0, nmax], min <= 0, minimizing the weighted squared error over a grid of trial scales."""
    lo = np.minimum(x.min(axis=1), 0.0)
    hi = x.max(axis=1)
    span = np.where(hi > lo, hi - lo, 1.0)
    sum_w, sum_x = weights.sum(axis=1), (weights * x).sum(axis=1)

    def error(scale, minimum, q):
        return (weights * (scale[:, None] * q + minimum[:, None] - x) ** 2).sum(axis=1)

    q = np.clip(_round((x - lo[:, None]) * (nmax / span)[:, None]), 0, nmax)
    best_scale, best_min = span / nmax, lo
    best_error = error(best_scale, best_min, q)
    for step in range(steps + 1):
        q = np.clip(
            _round((x - lo[:, None]) * ((nmax - 1.0 + 0.1 * step) / span)[:, None]), 0, nmax
        )
        sum_l, sum_l2, sum_xl = (
            (weights * q).sum(1),
            (weights * q * q).sum(1),
            (weights * q * x).sum(1),
        )
        det = sum_w * sum_l2 - sum_l**2
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = (sum_w * sum_xl - sum_x * sum_l) / det
            minimum = (sum_l2 * sum_x - sum_l * sum_xl) / det
            positive = minimum > 0  # the min must stay <= 0: refit the scale alone
            scale = np.where(positive, sum_xl / sum_l2, scale)
            minimum = np.where(positive, 0.0, minimum)
        trial = error(np.nan_to_num(scale), np.nan_to_num(minimum), q)
        better = (det > 0) & np.isfinite(scale) & (trial < best_error)
        best_scale = np.where(better, scale, best_scale)
        best_min = np.where(better, minimum, best_min)
        best_error = np.where(better, trial, best_error)
    flat = hi <= lo
    return np.where(flat, 0.0, best_scale), np.where(flat, lo, best_min)


def quantize_q4_k(rows: np.ndarray) -> np.ndarray:
    """`rows` (float, last dimension a multiple of 256) as Q4_K blocks: uint8 (blocks, 144)."""
    x = rows.astype(np.float32).reshape(-1, 8, 32)
    blocks = x.shape[0]
    sub = x.reshape(-1, 32)
    rms = np.sqrt((sub**2).mean(axis=1, keepdims=True))
    scale, minimum = _scale_and_min(sub, rms + np.abs(sub), nmax=15)
    scale, mins = scale.reshape(blocks, 8), (-minimum).reshape(blocks, 8)
    max_scale, max_min = scale.max(axis=1), mins.max(axis=1)
    with np.errstate(divide="ignore"):
        ls = np.minimum(63, _round(np.where(max_scale > 0, 63 / max_scale, 0)[:, None] * scale))
        lm = np.minimum(63, _round(np.where(max_min > 0, 63 / max_min, 0)[:, None] * mins))
    ls, lm = ls.astype(np.uint8), lm.astype(np.uint8)
    d = (max_scale / 63).astype(np.float16)
    dmin = (max_min / 63).astype(np.float16)
    step = d.astype(np.float32)[:, None] * ls
    offset = dmin.astype(np.float32)[:, None] * lm
    with np.errstate(divide="ignore", invalid="ignore"):
        q = _round((x + offset[:, :, None]) / step[:, :, None])
    q = np.where(step[:, :, None] > 0, np.clip(q, 0, 15), 0).astype(np.uint8)
    packed_scales = np.concatenate(
        [
            ls[:, :4] | ((ls[:, 4:] >> 4) << 6),
            lm[:, :4] | ((lm[:, 4:] >> 4) << 6),
            (ls[:, 4:] & 0x0F) | ((lm[:, 4:] & 0x0F) << 4),
        ],
        axis=1,
    )
    pairs = q.reshape(blocks, 4, 2, 32)  # sub-blocks 2g (low nibble) and 2g+1 (high nibble)
    qs = (pairs[:, :, 0] | (pairs[:, :, 1] << 4)).reshape(blocks, 128)
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), packed_scales, qs], axis=1)


def _symmetric_scale(x: np.ndarray, nmax: int) -> np.ndarray:
    """Per row of `x` (rows of 16): the scale s so that x ≈ s * q with q in [-nmax, nmax - 1],
    searched around -nmax / (the value of largest magnitude), weighting each value by x²."""
    peak = np.take_along_axis(x, np.abs(x).argmax(axis=1)[:, None], axis=1)[:, 0]
    tiny = np.abs(peak) < 1e-15
    peak = np.where(tiny, 1.0, peak)
    weights = x * x
    best_scale, best = np.zeros(len(x)), np.full(len(x), -np.inf)
    for step in range(-9, 10):
        inverse = -(nmax + 0.1 * step) / peak
        q = np.clip(_round(inverse[:, None] * x), -nmax, nmax - 1)
        sum_lx, sum_l2 = (weights * x * q).sum(1), (weights * q * q).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(sum_l2 > 0, sum_lx / sum_l2, 0.0)
        gain = scale * sum_lx
        better = (sum_l2 > 0) & (gain > best)
        best_scale, best = np.where(better, scale, best_scale), np.where(better, gain, best)
    return np.where(tiny, 0.0, best_scale)


def quantize_q6_k(rows: np.ndarray) -> np.ndarray:
    """`rows` (float, last dimension a multiple of 256) as Q6_K blocks: uint8 (blocks, 210)."""
    x = rows.astype(np.float32).reshape(-1, 16, 16)
    blocks = x.shape[0]
    scales = _symmetric_scale(x.reshape(-1, 16), nmax=32).reshape(blocks, 16)
    peak = np.take_along_axis(scales, np.abs(scales).argmax(axis=1)[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore"):
        inverse = np.where(peak != 0, -128 / peak, 0.0)
    small = np.clip(_round(inverse[:, None] * scales), -128, 127).astype(np.int8)
    d = np.where(peak != 0, 1 / np.where(inverse != 0, inverse, 1), 0).astype(np.float16)
    step = d.astype(np.float32)[:, None] * small
    with np.errstate(divide="ignore", invalid="ignore"):
        q = _round(x / step[:, :, None])
    q = (np.where(step[:, :, None] != 0, np.clip(q, -32, 31), 0) + 32).astype(np.uint8)
    rows32 = q.reshape(blocks, 2, 4, 32)  # halves of 128; within each, 4 rows of 32
    low, high = rows32 & 0x0F, rows32 >> 4
    ql = (low[:, :, 0:2] | (low[:, :, 2:4] << 4)).reshape(blocks, 128)
    qh = high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)
    return np.concatenate([ql, qh.reshape(blocks, 64), small.view(np.uint8), _f16_bytes(d)], axis=1)
