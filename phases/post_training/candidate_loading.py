"""Load a post-training candidate the way a user would: a GGUF file through transformers'
own reader (`from_pretrained(..., gguf_file=...)`, tokenizer and chat template taken from the
file), anything else through the project's model loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_for_generation(path: Path, *, cache_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode with left padding, ready for batched greedy answers."""
    path = Path(path)
    if path.suffix == ".gguf":
        return _load_gguf(path)
    from models.loading import load_model_and_tokenizer

    return load_model_and_tokenizer(str(path), cache_dir=cache_dir, for_generation=True)


def _cache_tensor_name_maps() -> None:
    """transformers' GGUF reader rebuilds gguf's tensor-name map of the architecture once per
    tensor (397 times for SmolLM2-135M: 17 of the 40 s a read-back took here). The map is a
    pure function of (architecture, layers), so one built map per pair serves them all."""
    import functools

    import gguf

    if not hasattr(gguf.get_tensor_name_map, "cache_info"):
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=16)(gguf.get_tensor_name_map)


def _load_gguf(path: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _cache_tensor_name_maps()

    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config.eos_token_id is None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), tokenizer


def disk_bytes(path: Path) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weight_bytes(path: Path) -> int:
    """Bytes of the weights alone: the GGUF file, or a folder's safetensors files."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.glob("*.safetensors"))
