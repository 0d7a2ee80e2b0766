"""Helpers of the concurrency and crash suites: tiny runs, worker processes, kills, tables.

A run here is the tiny quickstart twin (the session's tiny Llama, a few steps, a few eval
examples) so twenty of them fit in a minute or two of CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from llmfinetune_agent.config import RunConfig, parse_run_config
from llmfinetune_agent.execution import RunService
from llmfinetune_agent.run_store import RunRecord
from llmfinetune_agent.store.owners import owner_process_is_gone, parse_owner

REPO = Path(__file__).resolve().parents[2]
NO_GATES = {
    "approve_plan": False,
    "approve_data": False,
    "training_checkpoints": [],
    "approve_evaluation": False,
    "approve_fixes": False,
}
ENDED = ("completed", "failed", "cancelled")


def tiny_run_config(
    model_dir: Path, *, max_steps: int = 4, save_steps: int = 2, **gates: bool
) -> RunConfig:
    """The quickstart on the prebuilt tiny model, `max_steps` of training, `gates` on."""
    config = json.loads((REPO / "configs" / "quickstart-tiny.json").read_text())
    config["model"]["name_or_path"] = str(model_dir)
    config["data"]["train"] = str(REPO / "configs" / "data" / "quickstart" / "train.jsonl")
    config["training"].update(max_steps=max_steps, save_steps=save_steps)
    config["evaluation"].update(metrics=["rougeL"], max_examples=2, max_new_tokens=4, thresholds={})
    config["hitl"] = {**NO_GATES, **gates}
    return parse_run_config(config, source="reliability test")


def start_worker(log: Path, *, concurrency: int, env: dict[str, str] | None = None) -> Any:
    """`finetune-agent worker --concurrency N` in a subprocess, logging to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "llmfinetune_agent.cli", "worker"]
        + ["--concurrency", str(concurrency), "--poll-seconds", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env=env or os.environ.copy(),
    )


def stop_worker(worker: Any, log: Path) -> str:
    """SIGTERM the worker and wait for it; its log."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    return log.read_text()


def executor_pid(run: RunRecord) -> int | None:
    """The pid of the process executing a `running` run (its claim's owner), if alive."""
    if run.status != "running" or run.owner is None or owner_process_is_gone(run.owner):
        return None
    parsed = parse_owner(run.owner)
    return parsed[1] if parsed else None


def parent_pid(pid: int) -> int | None:
    """The parent of a live process, from /proc (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def records(service: RunService, run_ids: Iterable[str]) -> dict[str, RunRecord]:
    return {run_id: service.require(run_id) for run_id in run_ids}


def wait_until(what: str, check: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting: {what}"
        time.sleep(every)


def event_kinds(service: RunService, run_id: str) -> list[str]:
    return [e.kind for e in service.store.list_events(run_id=run_id, limit=100_000)]


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain-text table on stdout (`pytest -s` shows it)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    print(f"\n{title}")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
