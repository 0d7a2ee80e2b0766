"""Produce the final model directory: merge a LoRA adapter into its base, or copy a full model."""

from __future__ import annotations

import shutil
from pathlib import Path


def is_adapter_dir(path: Path) -> bool:
    """True when `path` holds a PEFT adapter rather than a full model."""
    return (Path(path) / "adapter_config.json").exists()


def export_final_model(
    model_dir: Path, output_dir: Path, *, merge_lora: bool, cache_dir: Path | None = None
) -> Path:
    """Write the final model into `output_dir` (replaced if present) and return it.

    A LoRA adapter is merged into its base weights when `merge_lora` is set, so the result
    loads with plain `AutoModelForCausalLM.from_pretrained`; otherwise it is copied as is.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if merge_lora and is_adapter_dir(model_dir):
        _merge(model_dir, staging, cache_dir)
    else:
        shutil.copytree(model_dir, staging)
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)  # a crash never leaves half a final model under the real name
    return output_dir


def _merge(adapter_dir: Path, output_dir: Path, cache_dir: Path | None) -> None:
    from models import load_model, load_tokenizer

    model = load_model(str(adapter_dir), cache_dir=cache_dir, for_training=False)
    merged = model.merge_and_unload()
    merged.save_pretrained(output_dir)
    load_tokenizer(str(adapter_dir), cache_dir=cache_dir).save_pretrained(output_dir)
