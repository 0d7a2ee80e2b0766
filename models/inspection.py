"""Facts about a model without loading its weights (for cost estimates before any compute)."""

from __future__ import annotations

from pathlib import Path

from models.config import ModelConfig


def count_parameters(config: ModelConfig | str, *, cache_dir: Path | None = None) -> int:
    """Parameter count of the model, built on the meta device from its config (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from models.loading import ModelLoadError, resolve_model_path

    path = resolve_model_path(config, cache_dir=cache_dir)
    try:
        model_config = AutoConfig.from_pretrained(path)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the config of model '{path}': {exc}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    return sum(p.numel() for p in model.parameters())
