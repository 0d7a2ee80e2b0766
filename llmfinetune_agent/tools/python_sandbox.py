"""The `python` tool: run a program in a separate, confined process and report what it printed.

    result = run_python("print(sum(range(10)))", SandboxLimits(timeout_seconds=5))
    result.stdout        # "45\\n"
    result.as_text()     # what the model is told

The program runs as `python -I main.py` in a fresh temporary directory (deleted afterwards),
with an empty environment, no network, a wall-clock timeout (its whole process tree is killed),
and limits on CPU time, memory, processes and file size; it may write only in its directory.
`sandbox_launcher.py` does the confining; its report of what took effect is in
`result.isolation`. Output beyond `max_output_chars` is cut (and read no further), so a
program printing forever costs no memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

LAUNCHER = Path(__file__).resolve().with_name("sandbox_launcher.py")
NOBODY = 65534
SYSTEM_PROGRAM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/bin")
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start on this machine; the message says what to install."""


class SandboxLimits(BaseModel):
    """What one run of the `python` tool may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Wall-clock seconds before the program is killed."
    )
    cpu_seconds: int = Field(10, gt=0, le=3600, description="CPU seconds (RLIMIT_CPU).")
    memory_bytes: int = Field(
        1024**3, ge=64 * 1024**2, le=64 * 1024**3, description="Address space (RLIMIT_AS)."
    )
    processes: int = Field(
        16, gt=0, le=4096, description="Processes of the sandbox user (RLIMIT_NPROC)."
    )
    file_bytes: int = Field(
        16 * 1024**2, gt=0, le=1024**3, description="Largest file it may write (RLIMIT_FSIZE)."
    )
    max_output_chars: int = Field(
        20_000, gt=0, le=1_000_000, description="Characters of stdout and of stderr kept."
    )


@dataclass
class SandboxResult:
    """How a program ended and what it printed."""

    stdout: str
    stderr: str
    exit_code: int | None
    """The program's exit status; 128+N when signal N ended it (137: killed)."""
    timed_out: bool
    isolation: dict[str, str] = field(default_factory=dict)
    """What confined it: network, user, files, sockets (from the launcher's report)."""
    truncated: bool = False

    def as_text(self) -> str:
        """The result as the model reads it."""
        parts = []
        if self.timed_out:
            parts.append("The program was stopped: it ran past its time limit.")
        elif self.exit_code:
            parts.append(f"The program failed (exit code {self.exit_code}).")
        if self.stdout:
            parts.append(self.stdout.rstrip())
        if self.stderr and (self.exit_code or self.timed_out):
            parts.append(self.stderr.rstrip()[-2000:])
        if self.truncated:
            parts.append("[output cut]")
        return "\n".join(parts) or "(the program printed nothing)"


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `code` in the sandbox and wait for it (at most `limits.timeout_seconds`)."""
    limits = limits or SandboxLimits()
    workdir = Path(tempfile.mkdtemp(prefix="finetune-agent-python-"))
    try:
        (workdir / "main.py").write_text(code, encoding="utf-8")
        uid = _sandbox_user(workdir)
        python = sandbox_interpreter(for_other_user=uid >= 0)
        config = {
            "workdir": str(workdir),
            "script": "main.py",
            "python": python,
            "uid": uid,
            "gid": uid,
            "readable": readable_dirs(python),
            "limits": limits.model_dump(exclude={"timeout_seconds", "max_output_chars"}),
        }
        return _run(config, workdir, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def sandbox_interpreter(*, for_other_user: bool) -> str:
    """The interpreter the program runs with: the service's own, unless the sandbox user
    cannot reach it (e.g. a pyenv install under a private home directory), then the
    system's python3 (standard library only)."""
    if not for_other_user or _reachable_by_others(sys.executable, sys.base_prefix):
        return sys.executable
    for candidate in SYSTEM_PYTHONS:
        if os.path.exists(candidate) and _reachable_by_others(candidate):
            return candidate
    raise SandboxUnavailable(
        f"the python tool runs programs as an unprivileged user, who cannot reach "
        f"{sys.executable} (a folder on its path is private) and no system python3 "
        f"({', '.join(SYSTEM_PYTHONS)}) is installed: install python3 system-wide"
    )


def _reachable_by_others(*paths: str) -> bool:
    """Whether every folder leading to each path lets other users through (o+x)."""
    for path in paths:
        target = Path(os.path.realpath(path))
        for folder in [*reversed(target.parents), target]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                return False
    return True


def readable_dirs(python: str) -> list[str]:
    """Folders the program may read and execute from: the interpreter's installation (and,
    for the service's own interpreter, its environment) and the system's program folders."""
    paths = {str(Path(os.path.realpath(python)).parent.parent)}
    if python == sys.executable:
        paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        paths |= {sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")}
    return sorted(p for p in {*paths, *SYSTEM_PROGRAM_DIRS} if os.path.isdir(p))


def _sandbox_user(workdir: Path) -> int:
    """The user the program runs as: `nobody` when we are root (who then owns the temporary
    directory), else ourselves (-1: no change)."""
    if os.geteuid() != 0:
        return -1
    for path in (workdir, workdir / "main.py"):
        os.chown(path, NOBODY, NOBODY)
    return NOBODY


def _run(config: dict[str, Any], workdir: Path, limits: SandboxLimits) -> SandboxResult:
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config)],
        cwd=workdir,
        env={},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: killed as a whole
        close_fds=True,
    )
    readers = [
        _CappedReader(stream, limits.max_output_chars)
        for stream in (process.stdout, process.stderr)
    ]
    timed_out = False
    try:
        process.wait(timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # also anything it left running
        process.wait()
    stdout, stderr = (reader.result() for reader in readers)
    isolation, stderr = _isolation_report(stderr)
    limit = limits.max_output_chars
    code = process.returncode
    return SandboxResult(
        stdout=stdout[:limit],
        stderr=stderr[:limit],
        exit_code=(128 - code) if code is not None and code < 0 else code,
        timed_out=timed_out,
        isolation=isolation,
        truncated=any(r.truncated for r in readers) or max(len(stdout), len(stderr)) > limit,
    )


def _isolation_report(stderr: str) -> tuple[dict[str, str], str]:
    """The launcher's `SANDBOX {...}` line, and stderr without it."""
    first, _, rest = stderr.partition("\n")
    if first.startswith("SANDBOX "):
        return json.loads(first[len("SANDBOX ") :]), rest
    return {}, stderr


class _CappedReader:
    """Reads a pipe to its end in a thread, keeping the bytes of at most `limit` characters
    (and of the launcher's report line); the caller cuts the decoded text to `limit`."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.stream, self.limit = stream, limit
        self.kept = bytearray()
        self.truncated = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        # A launcher report line plus `limit` characters of up to 4 bytes each.
        cap = 4 * self.limit + 4096
        while chunk := self.stream.read1(65536):
            room = cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            if len(chunk) > room:
                self.truncated = True
        self.stream.close()

    def result(self) -> str:
        self.thread.join()
        return self.kept.decode("utf-8", errors="replace")
