"""Make one compressed candidate of a full model: int8 (torchao), a GGUF file, or ternary.

`make_candidate(target, source_dir, output_dir)` returns the artifact's path (a folder, or a
`.gguf` file) and the exact settings it ran with; a dict from target to function, no registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phases.post_training.gguf_export import export_gguf
from phases.post_training.ternary import make_ternary

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)


def copy_tokenizer(source_dir: Path, output_dir: Path) -> None:
    """The source's tokenizer, chat template and generation config beside a new model."""
    for name in TOKENIZER_FILES:
        if (Path(source_dir) / name).is_file():
            shutil.copy2(Path(source_dir) / name, Path(output_dir) / name)


def quantize_int8(source_dir: Path, output_dir: Path, **_: Any) -> tuple[Path, dict[str, Any]]:
    """torchao int8 weight-only on every linear layer, saved as safetensors; it loads back with
    plain `AutoModelForCausalLM.from_pretrained` when torchao is installed (CPU included)."""
    import torch
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import AutoModelForCausalLM, TorchAoConfig

    model = AutoModelForCausalLM.from_pretrained(
        source_dir,
        dtype=torch.float32,
        quantization_config=TorchAoConfig(Int8WeightOnlyConfig()),
    )
    staging = _staging(output_dir)
    model.save_pretrained(staging, safe_serialization=True)
    copy_tokenizer(source_dir, staging)
    _publish(staging, output_dir)
    return output_dir, {
        "library": "torchao",
        "config": "Int8WeightOnlyConfig",
        "format": "safetensors",
    }


def _gguf(gguf_type: str) -> Callable[..., tuple[Path, dict[str, Any]]]:
    def export(
        source_dir: Path, output_dir: Path, *, sequences: Any = None, **_: Any
    ) -> tuple[Path, dict[str, Any]]:
        output_dir.mkdir(parents=True, exist_ok=True)
        tokens = [ids for ids, _first in sequences or []]  # only q8_0 is given any
        path = export_gguf(
            source_dir, output_dir / f"model-{gguf_type}.gguf", gguf_type, calibration=tokens
        )
        parameters = {"library": "gguf", "type": gguf_type, "format": "gguf"}
        if gguf_type == "q8_0":
            parameters["rounding"] = "gptq" if tokens else "nearest"
            parameters["calibration_sequences"] = len(tokens)
        return path, parameters

    return export


def _ternary(
    source_dir: Path, output_dir: Path, *, calibration: Any = None, **_: Any
) -> tuple[Path, dict[str, Any]]:
    staging = _staging(output_dir)
    parameters = make_ternary(source_dir, staging, calibration=calibration)
    copy_tokenizer(source_dir, staging)
    _publish(staging, output_dir)
    return output_dir, parameters


MAKERS: dict[str, Callable[..., tuple[Path, dict[str, Any]]]] = {
    "int8": quantize_int8,
    "gguf:q8_0": _gguf("q8_0"),
    "gguf:q4_k_m": _gguf("q4_k_m"),
    "gguf:bf16": _gguf("bf16"),
    "ternary": _ternary,
}


def make_candidate(
    target: str, source_dir: Path, output_dir: Path, **options: Any
) -> tuple[Path, dict[str, Any]]:
    """Make `target` from the full model in `source_dir` under `output_dir`: (path, settings)."""
    return MAKERS[target](Path(source_dir), Path(output_dir), **options)


def _staging(output_dir: Path) -> Path:
    staging = Path(output_dir).with_name(Path(output_dir).name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _publish(staging: Path, output_dir: Path) -> None:
    """Replace `output_dir` with the finished `staging` folder (never half a model under its name)."""
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)
