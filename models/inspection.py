"""Facts about a model without loading its weights (for cost estimates before any compute)."""

from __future__ import annotations

from pathlib import Path

from models.config import ModelConfig


def count_parameters(config: ModelConfig | str, *, cache_dir: Path | None = None) -> int:
    """Parameter count of the model, built on the meta device from its config (no weights read).

    Raises `ModelLoadError` naming the model when its config cannot be read or built.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from models.errors import ModelLoadError
    from models.loading import load_model_config

    model_config = load_model_config(config, cache_dir=cache_dir)
    trust_remote_code = isinstance(config, ModelConfig) and config.trust_remote_code
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(
                model_config, trust_remote_code=trust_remote_code
            )
    except ValueError as exc:  # the config is of a model that is not a causal language model
        raise ModelLoadError(f"cannot build model {model_config.name_or_path}: {exc}") from None
    return sum(p.numel() for p in model.parameters())
