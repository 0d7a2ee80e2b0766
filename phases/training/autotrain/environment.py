"""Where the AutoTrain backend lives and whether it is installed.

The backend is a virtual environment at `<backends_dir>/autotrain` (the service's
`<home>/backends` by default). An install that finished and passed its import check leaves a
manifest there (`finetune-agent-backend.json`: versions, pins, size, install time); without it
the folder is a broken or unfinished install and counts as absent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from phases.training.data import TrainingInputError

NAME = "autotrain"
VERSION = "0.8.36"
MANIFEST = "finetune-agent-backend.json"
CONSTRAINTS = Path(__file__).with_name("constraints.txt")
INSTALL_COMMAND = "finetune-agent backends install autotrain"
# What pip installs by name; everything else comes pinned from CONSTRAINTS. torch and
# torchvision are the CUDA builds on this machine's disk: AutoTrain imports torchvision through
# timm, and PyPI's torchvision fails to import beside the CPU build of torch 2.13.
REQUIREMENTS = (f"autotrain-advanced=={VERSION}", "torch==2.14.1", "torchvision==0.29.1")
# bitsandbytes 0.45.0 (AutoTrain's pin) imports `triton.ops`, which triton 3.8 no longer has, and
# PEFT imports it whenever it is present; 4-bit training needs a GPU anyway, so it is removed.
REMOVED = ("bitsandbytes",)


class BackendNotInstalled(TrainingInputError):
    """The run asks for a training backend that is not installed; the message says how."""


@dataclass
class BackendInstall:
    """One installed backend, as its manifest records it."""

    name: str
    version: str
    path: str
    python: str
    packages: dict[str, str]
    pins_sha256: str
    size_bytes: int
    install_seconds: float
    installed_at: str

    @property
    def bin_dir(self) -> Path:
        """The environment's `bin`: put first on PATH for the `autotrain` command."""
        return Path(self.path) / "bin"

    def to_dict(self) -> dict:
        """A JSON-serializable dict."""
        return asdict(self)


def backend_dir(backends_dir: Path) -> Path:
    """The AutoTrain environment's folder under `backends_dir`."""
    return Path(backends_dir) / NAME


def pins_sha256() -> str:
    """A digest of what an install pins: a changed pin makes an older install stale."""
    text = "\n".join(REQUIREMENTS) + "\n" + CONSTRAINTS.read_text(encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def installed_backend(backends_dir: Path) -> BackendInstall | None:
    """The installed AutoTrain backend, or None when absent, unfinished or built from other pins."""
    manifest = backend_dir(backends_dir) / MANIFEST
    try:
        found = BackendInstall(**json.loads(manifest.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if found.pins_sha256 != pins_sha256() or not (found.bin_dir / "autotrain").is_file():
        return None
    return found


def require_autotrain(backends_dir: Path) -> BackendInstall:
    """The installed backend; raises BackendNotInstalled with the install command otherwise."""
    found = installed_backend(backends_dir)
    if found is not None:
        return found
    where = backend_dir(backends_dir)
    state = "is not installed" if not where.exists() else "is not installed completely"
    raise BackendNotInstalled(
        f"training.backend 'autotrain' {state} (looked in {where}). Install it with "
        f"`{INSTALL_COMMAND}` (7.4 GB on disk; 4 to 15 minutes), or set training.backend "
        "to 'trl'."
    )


def write_manifest(install: BackendInstall) -> None:
    """Record a finished, checked install (written last: its presence means 'installed')."""
    path = Path(install.path) / MANIFEST
    path.write_text(json.dumps(install.to_dict(), indent=1), encoding="utf-8")
