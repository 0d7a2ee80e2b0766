"""`finetune-agent worker`: execute queued runs, with no HTTP server, until Ctrl-C or SIGTERM.

Workers share the database (and the home directory) with the API and with each other; the run
store is their queue (see llmfinetune_agent/execution/workers.py). With
`FINETUNE_AGENT_BACKEND=ray` the worker executes nothing itself: it submits the queued runs to
the Ray cluster (execution/ray_backend.py).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import typer

from llmfinetune_agent.settings import MAX_CONCURRENT_RUNS

if TYPE_CHECKING:
    from llmfinetune_agent.run_store import RunStore


def register(app: typer.Typer) -> None:
    """Add the `worker` command to the top-level app."""
    app.command("worker")(worker)


def worker(
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        min=1,
        max=MAX_CONCURRENT_RUNS,
        help="Runs executed at once (default: FINETUNE_AGENT_MAX_CONCURRENT_RUNS, else 1).",
    ),
    poll_seconds: float = typer.Option(
        1.0, "--poll-seconds", min=0.05, help="How often an idle worker looks for a queued run."
    ),
) -> None:
    """Execute queued runs (and runs a crash left behind) in the foreground until stopped."""
    from llmfinetune_agent.execution import make_backend, open_service

    # The pool says which run it takes and how each execution ended (docker compose logs).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with open_service() as service:
        size = concurrency or service.settings.max_concurrent_runs
        backend = make_backend(service, workers=size)
        backend.pool.poll_seconds = poll_seconds
        backend.start()
        where = " on the Ray cluster" if service.settings.backend == "ray" else ""
        typer.echo(
            f"worker: executing queued runs{where}, {size} at a time (Ctrl-C stops)", err=True
        )
        while not stop.wait(0.5):
            pass
        backend.stop()
        left = runs_left_running(service.store, backend.pool.active)
    if left:
        runs = ", ".join(left)
        typer.echo(f"worker stopped; the next worker resumes {runs} from its checkpoint", err=True)
    else:
        typer.echo("worker stopped", err=True)


def runs_left_running(store: RunStore, active: Iterable[str]) -> list[str]:
    """Of the runs a stopped worker was executing, the ones the store still has `running`: the
    ones the next worker resumes. A run can finish in the store while its worker stops."""
    return sorted(
        run_id
        for run_id in active
        if (record := store.get_run(run_id=run_id)) and record.status == "running"
    )
