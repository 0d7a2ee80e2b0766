"""Import a `.gguf` file as a normal, trainable Hugging Face model directory.

transformers reads GGUF files, but a model loaded that way is flagged as quantized and
refuses training and saving. Importing once dequantizes to float32, drops those flags and
writes a plain directory that every other part of the project loads like any model.
"""

from pathlib import Path

from models.errors import ModelLoadError

_QUANTIZATION_ATTRIBUTES = ("is_quantized", "quantization_method", "hf_quantizer")


def _check_readable(gguf_path: Path) -> None:
    """Fail early, naming the file, when it is missing or not a GGUF file at all."""
    from gguf import GGUFReader

    if not gguf_path.is_file():
        raise ModelLoadError(f"GGUF file not found: {gguf_path}")
    try:
        fields = GGUFReader(gguf_path).fields
    except Exception as error:  # the reader raises many types on a corrupt file
        raise ModelLoadError(
            f"cannot read GGUF file {gguf_path}: it is corrupt or not a GGUF file ({error})."
        ) from error
    if "general.architecture" not in fields:
        raise ModelLoadError(
            f"GGUF file {gguf_path} does not say its architecture; cannot load it."
        )


def _clear_quantization_flags(model) -> None:
    """Make the loaded model look like any float model, so Trainer and save_pretrained accept it."""
    for attribute in _QUANTIZATION_ATTRIBUTES:
        if hasattr(model, attribute):
            setattr(model, attribute, False if attribute == "is_quantized" else None)
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attribute):
            delattr(model.config, attribute)


def _load_from_gguf(gguf_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return model, tokenizer


def _verify(output_dir: Path) -> None:
    """Reload the saved directory: it must be a plain float32 model with trainable weights."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(output_dir)
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        raise ModelLoadError(f"imported model in {output_dir} is still flagged as quantized.")
    bad = [name for name, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise ModelLoadError(f"imported model in {output_dir} has non-float32 weights: {bad[:3]}")


def import_gguf(gguf_path: Path, output_dir: Path) -> Path:
    """Dequantize `gguf_path` into a float32 HF model + tokenizer directory at `output_dir`.

    Raises `ModelLoadError` naming the file when it cannot be read or its architecture is
    not one transformers can load from GGUF.
    """
    import torch

    gguf_path = Path(gguf_path).expanduser().resolve()
    output_dir = Path(output_dir)
    _check_readable(gguf_path)
    try:
        model, tokenizer = _load_from_gguf(gguf_path)
    except (ValueError, OSError, KeyError, NotImplementedError, RuntimeError) as error:
        raise ModelLoadError(f"cannot import GGUF file {gguf_path}: {error}") from error
    _clear_quantization_flags(model)
    model.to(torch.float32)
    model.config.dtype = torch.float32
    generation_config = model.generation_config
    if generation_config.eos_token_id is None:
        generation_config.eos_token_id = tokenizer.eos_token_id
    if generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    _verify(output_dir)
    return output_dir
