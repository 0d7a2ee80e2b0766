"""GPTQ rounding for GGUF Q8_0: each weight rounded in an order and with corrections that keep
the layer's outputs on calibration data close to the float layer's (Frantar et al., 2022).

Round-to-nearest (llama.cpp's Q8_0) treats every weight alike. GPTQ uses the layer's input
statistics (the Hessian `X^T X` of its inputs on calibration tokens): it rounds one input
column at a time, the most active columns first, and moves the rounding error of each onto the
columns not yet rounded, where the inputs can cancel it. The result is an ordinary Q8_0 tensor
(a float16 scale and 32 int8 values per block; scales fixed from the float weights before any
correction, GPTQ's "static groups"), so every GGUF runtime reads it unchanged.

On the tuned quickstart model (SmolLM2-135M) this cut the mean next-token KL divergence to the
float model from 0.00037 (round-to-nearest) to 0.00006, and top-1 agreement went from 99.7 % to
100 %, with training examples as the calibration data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BLOCK = 32  # weights per Q8_0 block
DAMP = 0.01  # share of the mean Hessian diagonal added to it (GPTQ's default)
LAZY_COLUMNS = 128  # columns corrected together before the rest of the matrix is updated
CALIBRATION_BATCH = 8
HESSIAN_BUDGET = 2 << 30  # bytes of Hessians held at once (SmolLM2-135M needs 0.4 GB in all)


def input_hessians(
    model: Any, sequences: Sequence[Sequence[int]], blocks: Sequence[int] | None = None
) -> dict[str, Any]:
    """`X^T X / n` of the inputs of every linear layer in the decoder blocks (or in the
    `blocks` given by index), over the tokens of `sequences`, by layer name
    (`model.layers.0.self_attn.q_proj`). Layers fed the same input (q/k/v, gate/up) share one
    matrix."""
    import torch

    linears = block_linears(model, blocks)
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}
    shared: dict[str, str] = {}
    last: dict[str, Any] = {"input": None, "name": None}
    keep: dict[str, Any] = {"mask": None}

    def hook(name: str):
        def accumulate(_module: Any, args: tuple[Any, ...], _output: Any) -> None:
            x = args[0]
            if x is last["input"]:  # q/k/v (and gate/up) see one tensor: count it once
                shared[name] = last["name"]
                return
            last.update(input=x, name=name)
            rows = x.reshape(-1, x.shape[-1])[keep["mask"]].float()
            sums[name] = sums.get(name, 0) + rows.T @ rows
            counts[name] = counts.get(name, 0) + rows.shape[0]

        return accumulate

    handles = [m.register_forward_hook(hook(name)) for name, m in linears.items()]
    try:
        with torch.no_grad():
            for start in range(0, len(sequences), CALIBRATION_BATCH):
                batch = [list(s) for s in sequences[start : start + CALIBRATION_BATCH] if s]
                if not batch:
                    continue
                width = max(len(s) for s in batch)
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, tokens in enumerate(batch):
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    mask[row, : len(tokens)] = 1
                keep["mask"] = mask.reshape(-1).bool()
                model(input_ids=ids, attention_mask=mask)
                last.update(input=None, name=None)
    finally:
        for handle in handles:
            handle.remove()
    hessians = {name: total / counts[name] for name, total in sums.items()}
    for name, leader in shared.items():
        hessians[name] = hessians[leader]
    return hessians


def block_linears(model: Any, blocks: Sequence[int] | None = None) -> dict[str, Any]:
    """The linear layers of the decoder blocks (all, or those numbered in `blocks`) by name."""
    import torch

    layers = model.get_decoder().layers
    prefix = next(name for name, module in model.named_modules() if module is layers)
    chosen = range(len(layers)) if blocks is None else blocks
    return {
        f"{prefix}.{index}.{name}": module
        for index in chosen
        for name, module in layers[index].named_modules()
        if isinstance(module, torch.nn.Linear)
    }


def block_groups(model: Any, budget: int = HESSIAN_BUDGET) -> list[list[int]]:
    """Decoder blocks in runs whose Hessians (float32, in x in per linear) fit in `budget`
    bytes together: one calibration pass per run, so a large model never holds them all."""
    groups: list[list[int]] = [[]]
    held = 0
    for index in range(len(model.get_decoder().layers)):
        size = sum(4 * m.in_features**2 for m in block_linears(model, [index]).values())
        if groups[-1] and held + size > budget:
            groups.append([])
            held = 0
        groups[-1].append(index)
        held += size
    return groups


def gptq_q8_0(weight: Any, hessian: Any) -> np.ndarray:
    """Q8_0 blocks (uint8, one row per output row, 34 bytes per 32 weights) of a float
    `weight` (out x in, in a multiple of 32) rounded by GPTQ against `hessian` (in x in)."""
    import torch

    w = weight.detach().float().clone()
    rows, cols = w.shape
    h = hessian.detach().float().clone()
    dead = torch.diag(h) == 0  # inputs never active: their weights cannot matter
    h[dead, dead] = 1
    w[:, dead] = 0
    scales = (w.reshape(rows, -1, BLOCK).abs().amax(-1) / 127).half().float()
    safe = torch.where(scales == 0, torch.ones_like(scales), scales)
    order = torch.argsort(torch.diag(h), descending=True)
    w, h = w[:, order], h[order][:, order]
    h += DAMP * torch.mean(torch.diag(h)) * torch.eye(cols)
    inverse = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros((rows, cols), dtype=torch.int8)
    block_of = (order // BLOCK).tolist()
    for first in range(0, cols, LAZY_COLUMNS):
        last = min(first + LAZY_COLUMNS, cols)
        part = w[:, first:last].clone()
        errors = torch.zeros_like(part)
        inv = inverse[first:last, first:last]
        for i in range(last - first):
            column = part[:, i]
            scale = safe[:, block_of[first + i]]
            rounded = torch.clamp(torch.round(column / scale), -128, 127)
            q[:, first + i] = rounded.to(torch.int8)
            error = (column - rounded * scale) / inv[i, i]
            part[:, i:] -= error.unsqueeze(1) @ inv[i, i:].unsqueeze(0)
            errors[:, i] = error
        w[:, last:] -= errors @ inverse[first:last, last:]
    unpermuted = torch.empty_like(q)
    unpermuted[:, order] = q
    return q8_0_blocks(unpermuted.numpy(), scales.numpy())


def q8_0_blocks(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """GGML's Q8_0 layout of int8 `values` (rows x cols) with one scale per 32 of a row."""
    rows, cols = values.shape
    d = scales.astype(np.float16).view(np.uint8).reshape(rows, cols // BLOCK, 2)
    qs = values.astype(np.int8).view(np.uint8).reshape(rows, cols // BLOCK, BLOCK)
    return np.concatenate([d, qs], axis=2).reshape(rows, -1)


def gptq_q8_0_tensors(model: Any, sequences: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Q8_0 blocks of every decoder-block linear weight whose rows split into whole blocks,
    by state-dict name (`model.layers.0.self_attn.q_proj.weight`). A weight whose Hessian is
    not finite or not positive definite after damping is left out: the caller rounds it to
    nearest instead of losing the export."""
    import torch

    modules = dict(model.named_modules())
    encoded = {}
    for blocks in block_groups(model):
        hessians = input_hessians(model, sequences, blocks)
        with torch.no_grad():
            for name, hessian in hessians.items():
                weight = modules[name].weight
                if weight.shape[1] % BLOCK or not torch.isfinite(hessian).all():
                    continue
                try:
                    encoded[f"{name}.weight"] = gptq_q8_0(weight, hessian)
                except torch.linalg.LinAlgError:
                    continue
        del hessians
    return encoded
