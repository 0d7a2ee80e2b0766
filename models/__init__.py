"""Model and tokenizer loading: hub ids, local directories, GGUF import, built-in tiny models.

Nothing here imports torch or transformers at module level, so the CLI starts fast: the
loading functions are imported on first use.
"""

import logging
from typing import TYPE_CHECKING, Any

from models.config import ModelConfig
from models.paths import default_cache_dir, default_home

# torchao (installed for int8 post-training) tries to load its CUDA-only kernels when peft or
# transformers import it, logging "Failed to load ..." on every CPU machine, and torch warns
# about torchao's enum registration: nothing a user can act on.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

if TYPE_CHECKING:
    from models.builtin import build_tiny_llama
    from models.errors import ModelLoadError
    from models.gguf_import import import_gguf
    from models.loading import (
        load_model,
        load_model_and_tokenizer,
        load_tokenizer,
        resolve_device,
        resolve_model_path,
    )

_LAZY = {
    "ModelLoadError": "models.errors",
    "load_model": "models.loading",
    "load_model_and_tokenizer": "models.loading",
    "load_tokenizer": "models.loading",
    "resolve_device": "models.loading",
    "resolve_model_path": "models.loading",
    "import_gguf": "models.gguf_import",
    "build_tiny_llama": "models.builtin",
}

__all__ = [
    "ModelConfig",
    "ModelLoadError",
    "build_tiny_llama",
    "default_cache_dir",
    "default_home",
    "import_gguf",
    "load_model",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "resolve_device",
    "resolve_model_path",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
