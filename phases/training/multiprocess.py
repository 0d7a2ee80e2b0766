"""Data-parallel training in several processes on one machine, through `accelerate launch`.

`train()` calls `train_in_processes` when `config.num_processes` > 1. It writes the call's
arguments to `<output_dir>/launch/request.json` and starts

    accelerate launch --multi_gpu --num_processes N ... -m phases.training.process_entry request.json

(accelerate's torchrun launcher: one process per GPU, or on a CPU-only machine N processes that
all-reduce their gradients over gloo). Each process runs `train()` itself on its share of
every batch. This process stays the one the caller talks to: it forwards the first process's
progress lines (`progress.jsonl`) to `progress`, turns `should_stop()` into a `stop` file the
processes agree on at the next step, and reads the first process's `result.json`. When the
processes fail, the error names the process that failed first, not the broken connections that
failure leaves in the others; the full log stays in `launch/processes.log`. Pausing at
a fraction and checkpoints work exactly as in one process: every process stops at the same
step, and the first writes the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from models.config import ModelConfig
from phases.training.config import TrainingSettings
from phases.training.data import TrainingInputError
from phases.training.results import TrainingProgress, TrainingResult

LAUNCH_SUBDIR = "launch"
REQUEST_FILE = "request.json"
PROGRESS_FILE = "progress.jsonl"
STOP_FILE = "stop"
RESULT_FILE = "result.json"
LOG_FILE = "processes.log"
POLL_SECONDS = 0.2
LOG_TAIL_CHARS = 1500
# torchrun's summary of the first failed process, e.g. "rank : 1 (local_rank: 1)" then
# "exitcode : -9 (pid: 123)": a negative exit code is the signal that ended it.
ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.DOTALL)


class TrainingProcessError(RuntimeError):
    """The training processes failed; the message ends with the tail of their log."""


def train_in_processes(
    config: TrainingSettings,
    *,
    model: ModelConfig | str,
    train_path: Path,
    eval_path: Path | None,
    output_dir: Path,
    max_length: int,
    stop_at_fraction: float | None,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    cache_dir: Path | None,
    continue_from: Path | None,
    reward_modules: list[str] | None = None,
) -> TrainingResult:
    """`train()` in `config.num_processes` processes (see the module docstring)."""
    launch_dir = Path(output_dir) / LAUNCH_SUBDIR
    shutil.rmtree(launch_dir, ignore_errors=True)  # an earlier call's stop file must not count
    launch_dir.mkdir(parents=True)
    request = {
        "config": config.model_dump(mode="json"),
        "model": model.model_dump(mode="json") if isinstance(model, ModelConfig) else model,
        "train_path": str(train_path),
        "eval_path": str(eval_path) if eval_path else None,
        "output_dir": str(output_dir),
        "max_length": max_length,
        "stop_at_fraction": stop_at_fraction,
        "cache_dir": str(cache_dir) if cache_dir else None,
        "continue_from": str(continue_from) if continue_from else None,
        "reward_modules": reward_modules,
        "parent_pid": os.getpid(),
    }
    (launch_dir / REQUEST_FILE).write_text(json.dumps(request, indent=1), encoding="utf-8")
    with (launch_dir / LOG_FILE).open("wb") as log:
        processes = subprocess.Popen(
            launch_command(config.num_processes, launch_dir / REQUEST_FILE),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(config.num_processes),
            start_new_session=True,  # one process group: ended together, whatever happens
        )
        try:
            _follow(processes, launch_dir, progress, should_stop)
        finally:
            _end(processes)
    return _result(launch_dir, processes.returncode, config.num_processes)


def launch_command(num_processes: int, request: Path) -> list[str]:
    """The `accelerate launch` command line for `num_processes` processes on this machine."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # accelerate's name for its torchrun launcher; gloo when there is no GPU
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",  # the training arguments decide (bf16 on a GPU that has it)
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "phases.training.process_entry",
        str(request),
    ]


def error_file(rank: int) -> str:
    """The file process `rank` (not the first) writes its failure to."""
    return f"error-{rank}.json"


def free_port() -> int:
    """A TCP port free on this machine now (for the processes' rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(num_processes: int) -> dict[str, str]:
    """The processes share the cores: each gets its part unless OMP_NUM_THREADS says otherwise."""
    env = dict(os.environ)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // num_processes)))
    return env


def _follow(
    processes: subprocess.Popen,
    launch_dir: Path,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Forward progress and stop requests until the processes exit."""
    read_at = 0
    stop_file = launch_dir / STOP_FILE
    while True:
        exited = processes.poll() is not None
        read_at = _forward_progress(launch_dir / PROGRESS_FILE, read_at, progress)
        if exited:
            return
        if should_stop is not None and not stop_file.exists() and should_stop():
            stop_file.touch()
        time.sleep(POLL_SECONDS)


def _forward_progress(
    path: Path, read_at: int, progress: Callable[[TrainingProgress], None] | None
) -> int:
    """Send each complete line written since `read_at`; the new offset."""
    if not path.is_file():
        return read_at
    with path.open("rb") as handle:
        handle.seek(read_at)
        chunk = handle.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    for line in complete.splitlines():
        if progress is not None and line.strip():
            progress(TrainingProgress(**json.loads(line)))
    return read_at + len(complete)


def _end(processes: subprocess.Popen) -> None:
    """End the whole process group (a no-op once it has exited by itself)."""
    if processes.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(processes.pid, signal.SIGTERM)
        try:
            processes.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(processes.pid, signal.SIGKILL)
            processes.wait()


def _result(launch_dir: Path, returncode: int | None, num_processes: int) -> TrainingResult:
    """The first process's result, an input error re-raised, or what made the processes fail."""
    outcomes = _outcomes(launch_dir, num_processes)
    first = outcomes.get(0, {})
    if returncode == 0 and "result" in first:
        return TrainingResult(**first["result"])
    for outcome in outcomes.values():
        if "input_error" in outcome:
            raise TrainingInputError(outcome["input_error"])
    log = launch_dir / LOG_FILE
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    raise TrainingProcessError(f"{_cause(outcomes, text, num_processes)} (full log: {log})")


def _outcomes(launch_dir: Path, num_processes: int) -> dict[int, dict]:
    """What each process wrote: the first its result or error, the others their error."""
    names = {0: RESULT_FILE} | {rank: error_file(rank) for rank in range(1, num_processes)}
    return {
        rank: json.loads((launch_dir / name).read_text(encoding="utf-8"))
        for rank, name in names.items()
        if (launch_dir / name).is_file()
    }


def _cause(outcomes: dict[int, dict], log_text: str, num_processes: int) -> str:
    """Why the processes failed, in one line when it is known.

    A process that fails breaks the others' next all-reduce, and they fail too ("connection
    closed by peer"): the cause is a signal that ended one (it wrote nothing), else the error
    written first."""
    root = ROOT_CAUSE.search(log_text)
    if root and int(root.group(2)) < 0:
        rank, number = int(root.group(1)), -int(root.group(2))
        name = signal.Signals(number).name if number in signal.valid_signals() else "?"
        killed = " (also how the kernel ends a process when memory runs out)" if number == 9 else ""
        return (
            f"training process {rank} of {num_processes} was ended by signal {number} ({name})"
            + killed
        )
    errors = {rank: o for rank, o in outcomes.items() if "error" in o}
    if errors:
        rank = min(errors, key=lambda r: errors[r].get("failed_at", float("inf")))
        return f"training process {rank} of {num_processes} failed: {errors[rank]['error']}"
    tail = log_text[-LOG_TAIL_CHARS:].strip()
    return f"the {num_processes} training processes ended without a result. Last lines:\n{tail}"
