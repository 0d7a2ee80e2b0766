"""`install_autotrain()`: build the AutoTrain backend's virtual environment, check it, record it.

    from phases.training.autotrain.install import install_autotrain
    install = install_autotrain(Path("~/.finetune-agent/backends").expanduser(), log=print)

Steps: a fresh venv (Python 3.11, as the pinned wheels are), pip with `-c constraints.txt`
(every version pinned; torch 2.14.1 and torchvision 0.29.1 from this machine's wheel folder),
bitsandbytes removed, then an import check of what AutoTrain's LLM trainer loads. Only a check
that passed writes the manifest, so an interrupted install is redone from scratch next time.
An install whose manifest matches today's pins is kept (`force` rebuilds it).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from models.paths import why_not_made
from phases.training.autotrain.environment import (
    CONSTRAINTS,
    NAME,
    REMOVED,
    REQUIREMENTS,
    VERSION,
    BackendInstall,
    backend_dir,
    installed_backend,
    pins_sha256,
    write_manifest,
)

INSTALL_LOG = "install.log"
CHECK_SCRIPT = """
import json, importlib.metadata as md
from autotrain.trainers.clm import utils  # imports transformers, peft, trl, timm -> torchvision
import torch, torchvision
names = ("autotrain-advanced", "torch", "torchvision", "transformers", "trl", "peft", "accelerate")
print(json.dumps({name: md.version(name) for name in names}))
"""


class BackendInstallError(RuntimeError):
    """The install failed; the message names the step and where its log is."""


def install_autotrain(
    backends_dir: Path, *, force: bool = False, log: Callable[[str], None] = lambda _: None
) -> BackendInstall:
    """Install (or keep) the AutoTrain backend under `backends_dir`; return its record."""
    target = backend_dir(backends_dir)
    existing = installed_backend(backends_dir)
    if existing is not None and not force:
        log(f"AutoTrain {existing.version} is installed in {target}; checking it imports...")
        try:
            _check_imports(target, target / INSTALL_LOG)
        except BackendInstallError as exc:
            raise BackendInstallError(f"{exc}. Rebuild it with --force.") from None
        return existing
    _check_platform()
    try:
        if remove_autotrain(backends_dir):
            log(f"removed the previous environment in {target}")
        target.mkdir(parents=True)
    except OSError as exc:  # a file where the backends folder goes, or no right to write
        raise BackendInstallError(
            f"cannot make the environment's folder {target}: {why_not_made(exc, target)}. Set "
            f"FINETUNE_AGENT_BACKENDS_DIR to a folder you can write (now: {backends_dir})"
        ) from None
    started = time.monotonic()
    install_log = target / INSTALL_LOG
    log(f"creating a virtual environment in {target}")
    _run([sys.executable, "-m", "venv", str(target)], install_log, "creating the venv")
    pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    log("upgrading pip")
    _run([*pip, "install", "-q", "--upgrade", "pip"], install_log, "upgrading pip")
    log(f"installing {', '.join(REQUIREMENTS)} with pinned dependencies (a few minutes)")
    _run(
        [*pip, "install", "-c", str(CONSTRAINTS), *REQUIREMENTS],
        install_log,
        "installing AutoTrain",
    )
    _run([*pip, "uninstall", "-y", *REMOVED], install_log, "removing bitsandbytes")
    log("checking that AutoTrain's LLM trainer imports")
    packages = _check_imports(target, install_log)
    install = BackendInstall(
        name=NAME,
        version=VERSION,
        path=str(target),
        python=platform.python_version(),
        packages=packages,
        pins_sha256=pins_sha256(),
        size_bytes=folder_size(target),
        install_seconds=round(time.monotonic() - started, 1),
        installed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_manifest(install)
    return install


def remove_autotrain(backends_dir: Path) -> bool:
    """Delete the backend's environment; False when there was none."""
    target = backend_dir(backends_dir)
    if target.is_symlink() or target.is_file():  # not an environment: only the name is ours
        target.unlink()
        return True
    if not target.exists():
        return False
    shutil.rmtree(target)
    return True


def folder_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def _check_platform() -> None:
    # The pins were measured on x86_64 with CPython 3.11: pip finds torch 2.14.1 and
    # torchvision 0.29.1 for it on this machine's disk; elsewhere it would download other builds.
    if platform.machine() != "x86_64" or sys.version_info[:2] != (3, 11):
        raise BackendInstallError(
            f"the AutoTrain backend's pins are for CPython 3.11 on x86_64; this is Python "
            f"{platform.python_version()} on {platform.machine()}. Run the service with Python "
            "3.11 on x86_64, or use training.backend 'trl'."
        )


def _check_imports(target: Path, install_log: Path) -> dict[str, str]:
    python = str(target / "bin" / "python")
    output = _run([python, "-c", CHECK_SCRIPT], install_log, "checking the imports")
    return json.loads(output.strip().splitlines()[-1])


def _run(command: list[str], install_log: Path, step: str) -> str:
    """Run one step, appending its output to the install log; raise naming the step."""
    result = subprocess.run(
        command, capture_output=True, text=True, env=_pip_environment(), check=False
    )
    with install_log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BackendInstallError(
            f"{step} failed (exit {result.returncode}): {' | '.join(last)}. "
            f"Full output: {install_log}"
        )
    return result.stdout


def _pip_environment() -> dict[str, str]:
    """pip's own settings and caches, without the service's variables (database URL, keys)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "XDG_CONFIG_DIRS")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    env["PYTHONNOUSERSITE"] = "1"
    return env
