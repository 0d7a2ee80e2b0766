"""The local worker pool: threads that execute queued runs in this process.

The run store is the queue: `queued` runs wait there, oldest first, and every worker of every
process (API replicas, `finetune-agent worker` replicas sharing Postgres) polls it. A worker
picks a run, then `RunService` claims it (a compare-and-set on its row), so exactly one worker
executes it. Runs left `running` by a crashed process are picked up the same way once their
owner is gone or their lease has run out. An accepted decision is a `decision_accepted` event
in the run's log, so whichever worker takes the run resumes it with that decision.
"""

from __future__ import annotations

import logging
import threading
import time

from llmfinetune_agent.execution.decisions import accepted_decision
from llmfinetune_agent.execution.errors import RunError
from llmfinetune_agent.execution.service import RunService
from llmfinetune_agent.run_store import make_owner

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
RETRY_AFTER_SECONDS = 5.0


class RunWorkerPool:
    """`size` worker threads taking runs from the store's queue (see the module docstring)."""

    def __init__(self, service: RunService, *, size: int, poll_seconds: float = POLL_SECONDS):
        self.service = service
        self.size = size
        self.poll_seconds = poll_seconds
        self.active: set[str] = set()
        """Runs a thread of this pool is executing."""
        self._skip_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"run-worker-{i}", daemon=True)
            for i in range(size)
        ]

    def start(self) -> None:
        """Start the worker threads (their first poll recovers runs a crash left behind)."""
        for thread in self._threads:
            thread.start()

    def notify(self) -> None:
        """A run was queued here: look now rather than at the next poll."""
        self._wake.set()

    def pending(self) -> int:
        """Runs waiting in the store for a worker (any process's)."""
        return len(self.service.store.recover_orphans(statuses=("queued",)))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking runs; wait up to `timeout` s for threads between runs to exit.

        A thread in the middle of a run keeps its claim until the process exits; the run is
        then recovered by the next worker (its owner process is gone).
        """
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while not self._stop.is_set():
            run_id = self._take()
            if run_id is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            try:
                self._execute(run_id)
            except Exception:  # a worker must survive any single run's failure
                logger.exception("Run %s: the worker failed", run_id)
                self._backoff(run_id)
            finally:
                with self._lock:
                    self.active.discard(run_id)

    def _take(self) -> str | None:
        """The oldest queued (or orphaned running) run no thread here is on, marked active."""
        candidates = self.service.store.recover_orphans(statuses=("queued", "running"))
        now = time.monotonic()
        with self._lock:
            for run_id in candidates:
                if run_id not in self.active and self._skip_until.get(run_id, 0.0) <= now:
                    self.active.add(run_id)
                    return run_id
        return None

    def _backoff(self, run_id: str) -> None:
        with self._lock:
            self._skip_until[run_id] = time.monotonic() + RETRY_AFTER_SECONDS

    def _execute(self, run_id: str) -> None:
        service = self.service
        try:
            pending = service.pending_interrupts(run_id)
            if pending:
                decision = accepted_decision(service, run_id, pending[0]["id"])
                if decision is None:  # nothing to continue with: wait for a human again
                    self._wait_again(run_id, pending[0])
                    return
                how = "resumed with the accepted decision"
                record = service.resume(run_id, decision=decision, interrupt_id=pending[0]["id"])
            elif not service.state_values(run_id):
                how, record = "started", service.start(run_id)
            else:
                how, record = "resumed after a crash", service.resume(run_id)
            logger.info("Run %s %s, now %s", run_id, how, record.status)
        except RunError as exc:  # another worker won the claim, or the run moved on
            logger.info("Run %s not executed here: %s", run_id, exc)
            self._backoff(run_id)

    def _wait_again(self, run_id: str, interrupt: dict) -> None:
        owner = make_owner()
        store = self.service.store
        if store.claim_run(run_id=run_id, owner=owner):
            store.release_run(
                run_id=run_id, owner=owner, status="awaiting_approval", pending_interrupt=interrupt
            )
