"""The worker pool that executes runs inside a service process.

The run store is the queue: `queued` runs wait there, oldest first, and every worker of
every process (API replicas, worker replicas sharing Postgres) polls it. A worker picks a run,
then `RunService` claims it (a compare-and-set on its row), so exactly one worker executes it.
Runs left `running` by a crashed process are picked up the same way once their owner is gone
or their lease has run out. A decision accepted over HTTP is stored as a `decision_accepted`
event, so whichever worker takes the run resumes it with that decision.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from llmfinetune_agent.run_store import make_owner
from llmfinetune_agent.runner import RunCancelled, RunError, RunService

logger = logging.getLogger(__name__)

CANCEL_EVENT = "cancel_requested"
DECISION_EVENT = "decision_accepted"
CANCEL_CHECK_SECONDS = 1.0
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
        on_event = cancel_watch(service, run_id)
        try:
            pending = service.pending_interrupts(run_id)
            if pending:
                decision = accepted_decision(service, run_id, pending[0]["id"])
                if decision is None:  # nothing to continue with: wait for a human again
                    owner = make_owner()
                    if service.store.claim_run(run_id=run_id, owner=owner):
                        service.store.release_run(
                            run_id=run_id,
                            owner=owner,
                            status="awaiting_approval",
                            pending_interrupt=pending[0],
                        )
                    return
                service.resume(
                    run_id, decision=decision, interrupt_id=pending[0]["id"], on_event=on_event
                )
            elif not service.state_values(run_id):
                service.start(run_id, on_event=on_event)
            else:
                service.resume(run_id, on_event=on_event)  # after a crash
        except RunError as exc:  # another worker won the claim, or the run moved on
            logger.info("Run %s not executed here: %s", run_id, exc)
            self._backoff(run_id)


def accepted_decision(service: RunService, run_id: str, interrupt_id: str) -> dict[str, Any] | None:
    """The decision accepted over HTTP for this interrupt, if any (the latest one)."""
    found = None
    for event in all_events(service, run_id):
        if event.kind == DECISION_EVENT and event.payload.get("interrupt_id") == interrupt_id:
            found = event.payload.get("decision")
    return found


def all_events(service: RunService, run_id: str, after: int = 0) -> list[Any]:
    """Every event of the run after `after`, in order (read page by page)."""
    events: list[Any] = []
    while batch := service.store.list_events(run_id=run_id, after_seq=after):
        events.extend(batch)
        after = batch[-1].seq
    return events


def cancel_watch(service: RunService, run_id: str) -> Any:
    """An event sink that raises `RunCancelled` once a cancel is requested for the run.

    The request is a `cancel_requested` event in the run's log (any process may append it);
    the sink looks for one at most once a second, reading only events it has not seen.
    """
    events = all_events(service, run_id)
    seen = {"seq": events[-1].seq if events else 0, "checked": 0.0}

    def on_event(_kind: str, _payload: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - seen["checked"] < CANCEL_CHECK_SECONDS:
            return
        seen["checked"] = now
        new = service.store.list_events(run_id=run_id, after_seq=seen["seq"])
        if new:
            seen["seq"] = new[-1].seq
        if any(e.kind == CANCEL_EVENT for e in new):
            raise RunCancelled(f"run {run_id} was cancelled on request")

    return on_event
