"""Where finetune-agent keeps its files: the home directory and the model cache under it."""

import os
from pathlib import Path

HOME_ENV = "FINETUNE_AGENT_HOME"
DEFAULT_HOME = "./.finetune-agent"
BACKENDS_DIR_ENV = "FINETUNE_AGENT_BACKENDS_DIR"


def default_home() -> Path:
    """The home directory: `$FINETUNE_AGENT_HOME`, else `./.finetune-agent`, as an absolute path."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()


def default_cache_dir() -> Path:
    """Where built-in models and imported GGUF files are cached: `<home>/models`."""
    return default_home() / "models"


def default_backends_dir() -> Path:
    """Where training backends' environments live (AutoTrain's venv):
    `$FINETUNE_AGENT_BACKENDS_DIR`, else `<home>/backends`."""
    configured = os.environ.get(BACKENDS_DIR_ENV)
    return Path(configured).expanduser().resolve() if configured else default_home() / "backends"


def not_a_folder(path: Path) -> Path:
    """The nearest of `path` and its parents that exists: the file standing where a folder
    must go, when making `path` met a FileExistsError or NotADirectoryError."""
    return next((p for p in (path, *path.parents) if p.exists()), path)


def why_not_made(exc: OSError, path: Path) -> str:
    """What making the folder `path` met, in words: the file in the folder's way is named."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"{not_a_folder(Path(exc.filename) if exc.filename else path)} is not a folder"
    return exc.strerror or str(exc)
