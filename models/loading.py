"""Load a base model and its tokenizer from whatever the user named.

A model reference is one of: `builtin:<name>` (built locally once, cached), a `.gguf` file
(imported once into a normal HF directory, cached by content hash), a local model directory,
a PEFT adapter directory (its base model plus the adapter), or a Hugging Face hub id.
Every failure a user can cause becomes a `ModelLoadError` saying what to do.
"""

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.config import BUILTIN_MODELS, BUILTIN_PREFIX, ModelConfig
from models.errors import ModelLoadError
from models.paths import default_cache_dir

ADAPTER_CONFIG = "adapter_config.json"
# "org/name" or "name": what a hub id looks like. Anything else that does not exist is a bad path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_DTYPES = ("float32", "bfloat16", "float16")
# peft (wrapping a model in LoRA) and TRL (DPO, generation) still read the alias transformers 5
# deprecated, which warns on every LoRA or DPO run: their code, nothing a user can act on.
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)


def resolve_device(device: str = "auto") -> str:
    """`auto` becomes "cuda" when a GPU is usable, else "cpu"; an unavailable device is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"model.device is {device!r} but no CUDA GPU is available; use 'auto' or 'cpu'."
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("model.device is 'mps' but MPS is not available; use 'auto' or 'cpu'.")
    return device


def _as_config(config_or_path: ModelConfig | str | os.PathLike) -> ModelConfig:
    if isinstance(config_or_path, ModelConfig):
        return config_or_path
    if not str(config_or_path).strip():  # `--model ""`: ModelConfig would raise a pydantic dump
        raise ModelLoadError(
            "the model reference is empty; give a model directory, a .gguf file, a hub id like "
            "'org/model' or a built-in ('builtin:tiny-llama')."
        )
    return ModelConfig(name_or_path=str(config_or_path))


def resolve_model_path(config: ModelConfig | str, *, cache_dir: Path | None = None) -> str:
    """Turn a model reference into something `from_pretrained` accepts: a local dir or a hub id.

    Built-in models are built and GGUF files imported on first use, into `cache_dir`
    (default `<home>/models`); later calls reuse them.
    """
    name = _as_config(config).name_or_path.strip()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if name.startswith(BUILTIN_PREFIX):
        return str(_builtin_path(name.removeprefix(BUILTIN_PREFIX), cache_dir))
    path = Path(name).expanduser()
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:  # a name no filesystem takes: too long, a NUL byte
        raise ModelLoadError(
            f"model {name[:100]!r}{'...' if len(name) > 100 else ''} is neither a usable path "
            f"({getattr(exc, 'strerror', None) or exc}) nor a hub id like 'org/model'."
        ) from None
    if path.is_dir():
        _check_model_dir(path)
        return str(path.resolve())
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return str(_imported_gguf_path(path.resolve(), cache_dir))
        raise ModelLoadError(
            f"model path {name!r} is a file; give a model directory, a .gguf file or a hub id."
        )
    if path.exists():  # a pipe or a device: not a hub id either, though it may look like one
        raise ModelLoadError(
            f"model path {name!r} is not a regular file or directory (a pipe, a socket or a "
            "device); give a model directory, a .gguf file or a hub id."
        )
    if not _HUB_ID.match(name) or name.lower().endswith(".gguf"):
        raise ModelLoadError(
            f"model path not found: {name!r} (resolved to {path.resolve()}). "
            "Check the path, or give a hub id like 'org/model'."
        )
    return name


def _check_model_dir(path: Path) -> None:
    if (path / "config.json").is_file():
        _check_config_file(path / "config.json")
        return
    if (path / ADAPTER_CONFIG).is_file():
        return
    raise ModelLoadError(
        f"model directory {path} has no config.json, so it is not a Hugging Face model "
        "directory (nor a PEFT adapter directory with adapter_config.json)."
    )


def _check_config_file(config_file: Path) -> None:
    """Refuse a config.json that is not a JSON object: transformers fails on one deep inside
    with a TypeError that names neither the file nor the problem."""
    try:
        settings = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, or not JSON
        raise ModelLoadError(f"cannot load model {config_file}: {error}") from None
    if not isinstance(settings, dict):
        raise ModelLoadError(
            f"cannot load model {config_file}: it holds a JSON {type(settings).__name__}, not an "
            "object of model settings (model_type, hidden_size, ...). Restore the model's own "
            "config.json."
        )


def _build_once(target: Path, build: Callable[[Path], Any]) -> Path:
    """Build into a temp dir beside `target`, then rename: a crash never leaves half a model."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        try:
            os.replace(staging, target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _builtin_path(name: str, cache_dir: Path) -> Path:
    if name not in BUILTIN_MODELS:
        available = ", ".join(BUILTIN_PREFIX + model for model in BUILTIN_MODELS)
        raise ModelLoadError(f"unknown built-in model {name!r}; available: {available}.")
    from models.builtin import build_tiny_llama
    from models.packaged import build_smollm2

    builders = {"tiny-llama": build_tiny_llama, "smollm2-135m-instruct": build_smollm2}
    return _build_once(cache_dir / "builtin" / name, builders[name])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _imported_gguf_path(gguf_path: Path, cache_dir: Path) -> Path:
    from models.gguf_import import import_gguf

    target = cache_dir / "gguf" / _file_sha256(gguf_path)[:16]
    return _build_once(target, lambda staging: import_gguf(gguf_path, staging))


def _adapter_base(adapter_dir: Path, cache_dir: Path) -> str:
    """The resolved base model of a PEFT adapter directory."""
    try:
        settings = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"cannot read {adapter_dir / ADAPTER_CONFIG}: {error}") from error
    base = settings.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(
            f"{adapter_dir / ADAPTER_CONFIG} has no base_model_name_or_path; "
            "cannot tell which base model the adapter belongs to."
        )
    try:
        return resolve_model_path(base, cache_dir=cache_dir)
    except ModelLoadError as error:
        raise ModelLoadError(f"base model of adapter {adapter_dir}: {error}") from error


def _is_adapter_dir(path: str) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file() and not (Path(path) / "config.json").is_file()


def _hub_kwargs(config: ModelConfig, path: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    if config.revision and not Path(path).exists():
        kwargs["revision"] = config.revision
    return kwargs


def _load_error(name: str, error: Exception) -> ModelLoadError:
    """Explain a `from_pretrained` failure: mostly a hub id with no network and no cache."""
    text = str(error)
    if Path(name).exists():
        return ModelLoadError(f"cannot load model from {name}: {text}")
    return ModelLoadError(
        f"cannot load model {name!r}: it is not a local path and could not be fetched from the "
        f"Hugging Face hub ({type(error).__name__}: {text.splitlines()[0] if text else ''}). "
        "Pass a local model directory path, check the model id, or run once with network "
        "access to cache it."
    )


def _config_file(name: str) -> str:
    return str(Path(name) / "config.json") if Path(name).is_dir() else f"{name}/config.json"


def _corrupt_weights_file(name: str) -> Path | None:
    """The first `*.safetensors` file in a local model directory that safetensors cannot open."""
    from safetensors import SafetensorError, safe_open

    if not Path(name).is_dir():
        return None
    for weights in sorted(Path(name).glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except (OSError, SafetensorError):
            return weights
    return None


def _weights_error(name: str, error: Exception) -> ModelLoadError:
    reason = f"{error}; the file is truncated or corrupt: copy or download the model again."
    weights = _corrupt_weights_file(name)
    if weights is not None:
        return ModelLoadError(f"cannot load model weights {weights}: {reason}")
    return ModelLoadError(f"cannot load the weights of model {name}: {reason}")


def _from_pretrained(loader: Callable[..., Any], name: str, **kwargs: Any) -> Any:
    from huggingface_hub.errors import HFValidationError, StrictDataclassError
    from safetensors import SafetensorError

    try:
        return loader(name, **kwargs)
    except (OSError, HFValidationError) as error:
        raise _load_error(name, error) from error
    except StrictDataclassError as error:  # a config.json value of the wrong type or range
        reason = " ".join(line.strip() for line in str(error).splitlines())
        raise ModelLoadError(f"cannot load model {_config_file(name)}: {reason}") from error
    except SafetensorError as error:
        raise _weights_error(name, error) from error
    except ValueError as error:  # e.g. a broken config.json or an unknown model type
        raise ModelLoadError(f"cannot load model {name!r}: {error}") from error


def load_model_config(config_or_path: ModelConfig | str, *, cache_dir: Path | None = None):
    """The model's transformers config (its config.json, or its base model's for an adapter
    directory), without reading any weights."""
    from transformers import AutoConfig

    config = _as_config(config_or_path)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = resolve_model_path(config, cache_dir=cache_dir)
    if _is_adapter_dir(path):
        path = _adapter_base(Path(path), cache_dir)
    return _from_pretrained(AutoConfig.from_pretrained, path, **_hub_kwargs(config, path))


def load_tokenizer(
    config_or_path: ModelConfig | str,
    *,
    cache_dir: Path | None = None,
    padding_side: str = "right",
):
    """The model's tokenizer with a pad token and the given padding side.

    Pad token: the tokenizer's own, else its unk token, else eos. `ModelConfig.chat_template`,
    when set, replaces the tokenizer's template.
    """
    from transformers import AutoTokenizer

    config = _as_config(config_or_path)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = resolve_model_path(config, cache_dir=cache_dir)
    has_own_tokenizer = any((Path(path) / name).is_file() for name in _TOKENIZER_FILES)
    if _is_adapter_dir(path) and not has_own_tokenizer:
        path = _adapter_base(Path(path), cache_dir)
    try:
        tokenizer = _from_pretrained(
            AutoTokenizer.from_pretrained, path, **_hub_kwargs(config, path)
        )
    except ModelLoadError:
        # Without its tokenizer files transformers says to install sentencepiece or tiktoken,
        # which would not help: say which files are missing instead.
        if Path(path).is_dir() and not any((Path(path) / n).is_file() for n in _TOKENIZER_FILES):
            raise ModelLoadError(
                f"cannot load the tokenizer of model {path}: the directory has none of "
                f"{', '.join(_TOKENIZER_FILES)}; copy the model's tokenizer files into it."
            ) from None
        raise
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    if tokenizer.pad_token is None:
        raise ModelLoadError(f"the tokenizer of {path} has no pad, unk or eos token to pad with.")
    tokenizer.padding_side = padding_side
    if config.chat_template:
        tokenizer.chat_template = config.chat_template
    return tokenizer


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of: auto, {', '.join(_DTYPES)}.")
    return getattr(torch, dtype)


def load_model(
    config_or_path: ModelConfig | str,
    *,
    cache_dir: Path | None = None,
    device: str | None = None,
    dtype: str = "auto",
    for_training: bool = True,
):
    """Load a causal LM on `device` (default: the config's), in `dtype` (default: the config's).

    A PEFT adapter directory loads its base model with the adapter on top (trainable when
    `for_training`). The model is in train mode when `for_training`, else eval mode.
    """
    from transformers import AutoModelForCausalLM

    config = _as_config(config_or_path)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    device = resolve_device(device or config.device)
    torch_dtype = _torch_dtype(dtype if dtype != "auto" else config.dtype, device)
    path = resolve_model_path(config, cache_dir=cache_dir)
    adapter_dir = Path(path) if _is_adapter_dir(path) else None
    if adapter_dir is not None:
        path = _adapter_base(adapter_dir, cache_dir)
    model = _from_pretrained(
        AutoModelForCausalLM.from_pretrained, path, dtype=torch_dtype, **_hub_kwargs(config, path)
    )
    if adapter_dir is not None:
        from peft import PeftModel

        model = _from_pretrained(
            functools.partial(PeftModel.from_pretrained, model),
            str(adapter_dir),
            is_trainable=for_training,
        )
    model.to(device)
    model.train(for_training)
    return model


def load_model_and_tokenizer(
    config_or_path: ModelConfig | str,
    *,
    cache_dir: Path | None = None,
    for_generation: bool = False,
    device: str | None = None,
):
    """Model and tokenizer that agree on the pad token.

    For generation: left padding (so batched prompts end where generation starts) and eval
    mode. For training: right padding and train mode.
    """
    tokenizer = load_tokenizer(
        config_or_path, cache_dir=cache_dir, padding_side="left" if for_generation else "right"
    )
    model = load_model(
        config_or_path, cache_dir=cache_dir, device=device, for_training=not for_generation
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        generation_config.pad_token_id = tokenizer.pad_token_id
        if generation_config.eos_token_id is None:
            generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer
