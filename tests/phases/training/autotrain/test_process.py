"""The process tree AutoTrain runs in, with real processes: its output reaches the reader line by
line (carriage returns too), a stop ends every process of the tree (AutoTrain -> accelerate ->
the trainer), a tree left by a dead worker is stopped by the next attempt, and the environment
carries none of the service's secrets."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import psutil
import pytest

from phases.training.autotrain.process import (
    autotrain_environment,
    run_process_tree,
    stop_leftover,
    write_pid_file,
)

# A parent that starts a child that starts a grandchild (like autotrain -> accelerate ->
# python), each writing its pid; the grandchild draws a progress bar, then all sleep.
TREE = """
import os, subprocess, sys, time
depth = int(sys.argv[1])
print(f"pid {depth} {os.getpid()}", flush=True)
if depth < 2:
    subprocess.Popen([sys.executable, __file__, str(depth + 1)])
else:
    sys.stdout.write("  0%|  | 0/3 [00:00]\\r 33%|# | 1/3 [00:01]\\r")
    print("ready", flush=True)
time.sleep(120)
"""


def _run_tree(tmp_path: Path, should_stop) -> tuple[list[str], object]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    lines: list[str] = []
    threads: set[int] = set()

    def on_line(line: str) -> None:
        threads.add(threading.get_ident())
        lines.append(line)

    outcome = run_process_tree(
        [sys.executable, str(script), "0"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"},
        log_path=tmp_path / "out.log",
        pid_path=tmp_path / "tree.pid",
        on_line=on_line,
        should_stop=lambda: should_stop(lines),
    )
    # Lines reach the handler in the caller's thread: LangGraph's stream writer works only there.
    assert threads == {threading.get_ident()}
    return lines, outcome


def _pids(lines: list[str]) -> list[int]:
    return [int(line.split()[2]) for line in lines if line.startswith("pid ")]


def test_a_stop_ends_every_process_of_the_tree(tmp_path: Path) -> None:
    lines, outcome = _run_tree(tmp_path, lambda seen: "ready" in seen)

    assert outcome.cancelled
    pids = _pids(lines)
    assert len(pids) == 3
    assert not [pid for pid in pids if psutil.pid_exists(pid) and _alive(pid)]
    # Carriage-return redraws arrive as lines of their own, and the log keeps the raw output.
    assert " 33%|# | 1/3 [00:01]" in lines
    assert b"\r" in (tmp_path / "out.log").read_bytes()
    assert not (tmp_path / "tree.pid").exists()


def test_a_tree_left_behind_by_a_dead_worker_is_stopped_by_the_next_attempt(
    tmp_path: Path,
) -> None:
    import subprocess

    script = tmp_path / "tree.py"
    script.write_text(TREE)
    leftover = subprocess.Popen(
        [sys.executable, str(script), "1"], start_new_session=True, stdout=subprocess.PIPE
    )
    write_pid_file(tmp_path / "autotrain.pid", leftover.pid)
    child = int(leftover.stdout.readline().split()[2])  # its own pid line...
    child = int(leftover.stdout.readline().split()[2])  # ...then its child's

    assert stop_leftover(tmp_path / "autotrain.pid")
    assert leftover.wait(timeout=30) is not None
    assert not _alive(child)
    # A pid that now belongs to another process (another start time) is left alone.
    (tmp_path / "autotrain.pid").write_text(f"{os.getpid()} 12345.0")
    assert not stop_leftover(tmp_path / "autotrain.pid")
    assert not stop_leftover(tmp_path / "missing.pid")


def test_the_environment_has_the_venv_first_and_none_of_the_service_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINETUNE_AGENT_DATABASE_URL", "postgresql://user:secret@db/runs")
    monkeypatch.setenv("FINETUNE_AGENT_API_KEY", "key")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = autotrain_environment(tmp_path / "venv" / "bin", trust_remote_code=False)

    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "venv" / "bin")
    assert env["ALLOW_REMOTE_CODE"] == "false" and env["PAUSE_ON_FAILURE"] == "0"
    assert env["HF_HUB_OFFLINE"] == "1"
    secrets = ("postgresql://", "key", "hf_secret")
    assert not [k for k, v in env.items() if k.startswith("FINETUNE_AGENT") or v in secrets]
    assert "HF_TOKEN" not in env
    assert autotrain_environment(tmp_path, trust_remote_code=True)["ALLOW_REMOTE_CODE"] == "true"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
