"""Where runs execute: the interface the API and the CLI call, and its local implementation.

`LocalBackend` is today's: the run store is the queue and a `RunWorkerPool` of this process
executes it (with no workers, other processes sharing the database do). `RayBackend`
(ray_backend.py) implements the same five methods by submitting runs to a Ray cluster;
`make_backend` picks one by the settings' `backend`.
"""

from __future__ import annotations

from typing import Any, Protocol

from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.execution.cancel import CancelOutcome, cancel_run
from llmfinetune_agent.execution.decisions import DecisionCheck, accept_decision
from llmfinetune_agent.execution.service import RunService
from llmfinetune_agent.execution.workers import RunWorkerPool
from llmfinetune_agent.run_store import RunRecord


class ExecutionBackend(Protocol):
    """Submitting, deciding and cancelling runs, and the executors' lifetime."""

    def start(self) -> None:
        """Begin executing submitted runs (and runs a crash left behind)."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking runs; a run in progress is resumed later from its checkpoint."""

    def submit(self, config: RunConfig, *, parent_run_id: str | None = None) -> RunRecord:
        """Create a queued run for `config` and hand it to an executor."""

    def decide(
        self,
        run_id: str,
        *,
        interrupt_id: str,
        decision: dict[str, Any],
        check: DecisionCheck | None = None,
    ) -> None:
        """Accept a decision for a pending gate; an executor resumes the run with it."""

    def cancel(self, run_id: str, *, by: str) -> CancelOutcome:
        """Cancel a run now, or ask the executor of a running one to stop it."""


class LocalBackend:
    """The store-as-queue backend: `workers` worker processes of this service execute runs."""

    def __init__(self, service: RunService, *, workers: int):
        self.service = service
        self.pool = RunWorkerPool(service, size=workers)

    def start(self) -> None:
        self.pool.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.pool.stop(timeout)

    def submit(self, config: RunConfig, *, parent_run_id: str | None = None) -> RunRecord:
        record = self.service.create_run(config, parent_run_id=parent_run_id)
        self.pool.notify()
        return record

    def decide(
        self,
        run_id: str,
        *,
        interrupt_id: str,
        decision: dict[str, Any],
        check: DecisionCheck | None = None,
    ) -> None:
        accept_decision(
            self.service, run_id=run_id, interrupt_id=interrupt_id, decision=decision, check=check
        )
        self.pool.notify()

    def cancel(self, run_id: str, *, by: str) -> CancelOutcome:
        return cancel_run(self.service.store, run_id, by=by)


def make_backend(service: RunService, *, workers: int) -> ExecutionBackend:
    """The settings' backend: `workers` local worker processes, or the Ray cluster's executors
    (`workers` == 0: this process only serves, others execute, whatever the backend)."""
    if service.settings.backend == "ray" and workers:
        from llmfinetune_agent.execution.ray_backend import RayBackend

        return RayBackend(service, size=workers)
    return LocalBackend(service, workers=workers)
