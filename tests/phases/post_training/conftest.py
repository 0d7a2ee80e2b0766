"""A tiny Llama that predicts with confidence, as a trained model does.

The built-in tiny Llama is random: its next-token distributions are nearly flat, so any
rounding flips greedy answers and LoRA cannot sharpen them (the final norm bounds the logits).
Scaling its final norm by 10 gives it decisive logits without training it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sharp_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp-llama")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.model.norm.weight.mul_(10)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out
