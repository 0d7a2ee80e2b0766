"""Ternary weights (BitNet b1.58's absmean rounding), with an optional short calibration.

Every linear layer of the transformer blocks gets W ≈ γ · clip(round(W / γ), -1, 1) with
γ = mean |W| of that matrix; embeddings, norms and the output head stay as they are. With
calibration, a few steps of fine-tuning follow in which the forward pass uses the rounded
weights and gradients reach the latent float weights unchanged (the straight-through
estimator), then the weights are rounded for good. Experimental: the weights are stored
unpacked (float32 values of three levels per matrix), so the file is not smaller; and small
models lose most of what they learned, which the quality gate reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phases.post_training.gptq import block_linears

EFFECTIVE_BITS = 1.58  # log2(3)


@dataclass
class TernaryCalibration:
    """Token sequences to fine-tune on after rounding, and for how many steps."""

    steps: int
    sequences: list[tuple[list[int], int]] = field(default_factory=list)
    """(token ids, index of the first token the loss is taken on), e.g. training examples."""
    learning_rate: float = 1e-4


def ternarize(weight: Any) -> Any:
    """BitNet b1.58's absmean rounding of one weight matrix (a torch tensor)."""
    gamma = weight.abs().mean().clamp(min=1e-8)
    return (weight / gamma).round().clamp(-1, 1) * gamma


def _straight_through() -> Any:
    """A parametrization: the forward pass sees the ternary weight, the gradient the float one."""
    import torch

    class StraightThrough(torch.nn.Module):
        def forward(self, weight):
            return weight + (ternarize(weight) - weight).detach()

    return StraightThrough()


def make_ternary(
    source_dir: Path, output_dir: Path, *, calibration: TernaryCalibration | None = None
) -> dict[str, Any]:
    """Write the ternary version of the model in `source_dir` to `output_dir`; return its settings."""
    import torch
    from torch.nn.utils import parametrize
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source_dir, dtype=torch.float32)
    linears = list(block_linears(model).values())
    for linear in linears:
        parametrize.register_parametrization(linear, "weight", _straight_through())
    steps = _calibrate(model, calibration) if calibration and calibration.steps else 0
    for linear in linears:
        # The latent weights back, then rounded exactly: w + (t - w) in floats is not t.
        parametrize.remove_parametrizations(linear, "weight", leave_parametrized=False)
        with torch.no_grad():
            linear.weight.copy_(ternarize(linear.weight))
    model.save_pretrained(output_dir, safe_serialization=True)
    return {
        "method": "bitnet_b1.58_absmean",
        "layers": len(linears),
        "calibration_steps": steps,
        "effective_bits_per_weight": EFFECTIVE_BITS,
        "stored": "unpacked float32 (three levels per matrix)",
        "experimental": True,
    }


def _calibrate(model: Any, calibration: TernaryCalibration) -> int:
    """Straight-through-estimator fine-tuning, one sequence per step, cycling through them."""
    import torch

    if not calibration.sequences:
        return 0
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=calibration.learning_rate
    )
    for step in range(calibration.steps):
        ids, first = calibration.sequences[step % len(calibration.sequences)]
        input_ids = torch.tensor([ids])
        labels = input_ids.clone()
        labels[0, :first] = -100
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return calibration.steps
