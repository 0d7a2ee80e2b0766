"""LoRA linear layers that add their update inside one matrix product.

PEFT computes `base(x) + lora_B(lora_A(x)) * scaling`: a product, then a multiplication and an
addition over the whole output, and in the backward pass one more multiplication of the same
size. On a CPU these element-wise passes were a seventh of a LoRA step on SmolLM2-135M (the
profile in the README). `fuse_lora_updates` gives each plain LoRA linear layer a forward that
adds `scaling * h @ B^T` into the base layer's output in place (`addmm_`, the scaling applied by
the matrix product), which is the same sum: losses and gradients are unchanged.

Only the case it is sure of is taken: one active adapter, plain LoRA (no DoRA or other
variant, no LoRA bias), not merged, adapters enabled, no extra forward arguments, a plain
`torch.nn.Linear` base layer (quantized bases keep PEFT's own layer classes and are left
alone). Anything else calls PEFT's forward unchanged. The weights, the saved adapter and
merging are not touched: only the instance's `forward` is replaced.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def fuse_lora_updates(model: torch.nn.Module) -> int:
    """Give every plain LoRA linear layer of `model` the fused forward; returns how many."""
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:  # no PEFT, no LoRA layers
        return 0
    fused = 0
    for module in model.modules():
        if (
            type(module) is LoraLinear
            and type(module.base_layer) is torch.nn.Linear
            and not module.fan_in_fan_out
        ):
            module.forward = types.MethodType(_fused_forward, module)
            fused += 1
    return fused


def _fused_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """PEFT's LoRA forward with the update added by `addmm_` (see the module docstring)."""
    adapters = [name for name in self.active_adapters if name in self.lora_A]
    if (
        args
        or kwargs
        or self.disable_adapters
        or self.merged
        or len(adapters) != 1
        or adapters[0] in self.lora_variant
        or self.lora_B[adapters[0]].bias is not None
    ):
        return type(self).forward(self, x, *args, **kwargs)
    name = adapters[0]
    lora_a, lora_b = self.lora_A[name], self.lora_B[name]
    result = self.base_layer(x)
    if not result.is_contiguous():
        return type(self).forward(self, x)
    hidden = lora_a(self.lora_dropout[name](self._cast_input_dtype(x, lora_a.weight.dtype)))
    # In place is safe: a linear layer's backward needs its input and weight, not its output.
    result.view(-1, result.shape[-1]).addmm_(
        hidden.reshape(-1, hidden.shape[-1]).to(result.dtype),
        lora_b.weight.t().to(result.dtype),
        alpha=self.scaling[name],
    )
    return result
