"""Running `autotrain --config` as a process tree we can watch, stop and clean up after.

AutoTrain starts `accelerate launch`, which starts the Python process that trains: three
processes. They run in a session of their own, so a cancel stops the whole tree (the group,
then any descendant that left it); a pid file lets the next attempt stop a tree a crashed
worker left running. The environment is built from scratch: the venv's `bin` first on PATH,
the Hugging Face offline switches and caches, and nothing of the service's own (its database
URL, API key, tokens).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.5
TERM_GRACE_SECONDS = 10.0
PASSED_THROUGH = (
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "SSL_CERT_FILE",
)


@dataclass
class ProcessOutcome:
    """How the process tree ended."""

    exit_code: int | None
    cancelled: bool
    seconds: float


def autotrain_environment(bin_dir: Path, *, trust_remote_code: bool) -> dict[str, str]:
    """The variables AutoTrain runs with (see the module docstring)."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.update(
        PATH=os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]),
        PYTHONUNBUFFERED="1",  # lines arrive as they are written, in order
        PYTHONNOUSERSITE="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_DISABLE_TELEMETRY="1",
        # AutoTrain lets model repositories run their own code unless told otherwise.
        ALLOW_REMOTE_CODE="true" if trust_remote_code else "false",
        PAUSE_ON_FAILURE="0",  # on failure it would try to pause a Hugging Face Space
    )
    return env


def run_process_tree(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    pid_path: Path,
    on_line: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> ProcessOutcome:
    """Run `command`, feeding each output line to `on_line` and appending it to `log_path`;
    stop the whole tree once `should_stop()` is True. `on_line` and `should_stop` are called
    in the caller's thread (LangGraph's stream writer works only there); a thread only reads."""
    stop_leftover(pid_path)
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        write_pid_file(pid_path, process.pid)
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(process, log, lines), daemon=True)
        reader.start()
        try:
            cancelled = _follow(lines, on_line, should_stop)
            if cancelled:
                stop_tree(process.pid)
        except BaseException:  # a handler failed or we are torn down: take the tree with us
            stop_tree(process.pid)
            raise
        finally:
            process.wait()
            reader.join(timeout=30)
            pid_path.unlink(missing_ok=True)
    return ProcessOutcome(process.returncode, cancelled, round(time.monotonic() - started, 1))


def _follow(
    lines: queue.Queue[str | None],
    on_line: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> bool:
    """Hand out lines until the output ends (False) or a stop is asked for (True)."""
    while True:
        try:
            line = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            line = ""
        if line is None:
            return False
        if line:
            on_line(line)
        if should_stop():
            return True


def stop_tree(pid: int) -> None:
    """SIGTERM the process group led by `pid` and every descendant, SIGKILL what is left."""
    import psutil  # a dependency of accelerate

    try:
        leader = psutil.Process(pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    _signal_group(pid, signal.SIGTERM)
    for member in members:
        _quietly(member.terminate)
    _, alive = psutil.wait_procs(members, timeout=TERM_GRACE_SECONDS)
    _signal_group(pid, signal.SIGKILL)
    for member in alive:
        _quietly(member.kill)
    psutil.wait_procs(alive, timeout=TERM_GRACE_SECONDS)


def write_pid_file(pid_path: Path, pid: int) -> None:
    """Record the tree's leader: its pid and start time (a pid alone may be reused)."""
    import psutil

    pid_path.write_text(f"{pid} {psutil.Process(pid).create_time()}")


def stop_leftover(pid_path: Path) -> bool:
    """Stop a tree an earlier attempt left running (its worker died); True if one was found."""
    import psutil

    try:
        pid_text, started = pid_path.read_text().split()
        leader = psutil.Process(int(pid_text))
        same = leader.create_time() == float(started)
    except (OSError, ValueError, psutil.Error):
        return False
    if not same:  # the pid now belongs to another process
        return False
    stop_tree(leader.pid)
    return True


def _pump(process: subprocess.Popen, log, lines: queue.Queue[str | None]) -> None:
    """Copy the output to the log and queue its lines (tqdm redraws with carriage returns);
    None marks the end of the output."""
    pending = b""
    for chunk in iter(lambda: process.stdout.read1(65536), b""):
        log.write(chunk)
        log.flush()
        pending += chunk.replace(b"\r", b"\n")
        *complete, pending = pending.split(b"\n")
        for line in complete:
            lines.put(line.decode("utf-8", errors="replace"))
    if pending:
        lines.put(pending.decode("utf-8", errors="replace"))
    lines.put(None)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _quietly(action: Callable[[], None]) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        action()
