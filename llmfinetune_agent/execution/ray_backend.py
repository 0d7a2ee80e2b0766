"""The Ray backend (`FINETUNE_AGENT_BACKEND=ray`): runs execute as Ray tasks on a cluster.

Every process that runs with this backend (`serve`, `worker`, `finetune-agent run|resume`) is
a Ray driver. The run store stays the queue and the LangGraph state stays in the database, so
any driver can take any run: its dispatcher submits `execute_on_cluster(settings, run_id)` as a
Ray task for each queued run (and each run whose executor died), at most
`FINETUNE_AGENT_MAX_CONCURRENT_RUNS` at a time. The task runs on the head node with no CPU
reserved and executes the graph exactly as a local worker does — it claims the run with a
compare-and-set, so of two drivers dispatching the same run only one executes it — except that
its trainer node trains on the cluster, in a Ray Train job placed by `training.resources`
(ray_training.py).

When the executor's process dies, Ray runs the task again (while its driver lives) or another
driver's dispatcher finds the orphaned run; either way the run resumes from its checkpoint and
the trainer node re-attaches to the training job that is still running. When a driver dies,
Ray ends the tasks it submitted, never the training jobs (detached), so the driver that
resumes the run re-attaches in the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.execution.cancel import CancelOutcome, cancel_run
from llmfinetune_agent.execution.decisions import DecisionCheck, accept_decision
from llmfinetune_agent.execution.errors import ENDED, InvalidDecision
from llmfinetune_agent.execution.ray_training import HEAD_NODE, connect, kill_training_jobs
from llmfinetune_agent.execution.service import EventSink, RunService
from llmfinetune_agent.run_store import RunRecord
from llmfinetune_agent.settings import Settings

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
FOLLOW_SECONDS = 0.3
RETRY_AFTER_SECONDS = 5.0
TASK_RETRIES = 3
"""Ray re-runs an executor task whose process died this many times (its driver alive)."""


def execute_on_cluster(settings: Settings, run_id: str) -> bool:
    """The Ray task: execute the run as a local worker would; True when it was not executed
    here (another executor holds it, or it moved on)."""
    from llmfinetune_agent.execution.service import open_service
    from llmfinetune_agent.execution.worker_process import execute_run

    with open_service(settings) as service:
        return execute_run(service, run_id)


class RayDispatcher:
    """Submits executor tasks for runs waiting in the store (the Ray backend's `pool`)."""

    def __init__(self, service: RunService, *, size: int, poll_seconds: float = POLL_SECONDS):
        self.service = service
        self.size = size
        self.poll_seconds = poll_seconds
        self.inflight: dict[str, Any] = {}
        """Run id -> the object ref of the executor task this driver submitted for it."""
        self._skip_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ray-dispatch", daemon=True)

    @property
    def active(self) -> set[str]:
        """Runs an executor task of this driver is executing."""
        with self._lock:
            return set(self.inflight)

    def start(self) -> None:
        """Look for runs to dispatch every `poll_seconds` (and at once when notified)."""
        self._thread.start()

    def notify(self) -> None:
        """A run was queued here: look now."""
        self._wake.set()

    def pending(self) -> int:
        """Runs waiting in the store for an executor."""
        return len(self.service.store.recover_orphans(statuses=("queued",)))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop dispatching. Tasks in flight end with this driver; their runs are resumed by
        the next driver, and their training jobs go on meanwhile."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def dispatch(self, run_id: str) -> bool:
        """Submit an executor task for the run unless one of ours is on it; True if submitted."""
        import ray

        with self._lock:
            if run_id in self.inflight:
                return False
            task = ray.remote(execute_on_cluster).options(
                num_cpus=0, resources=HEAD_NODE, max_retries=TASK_RETRIES, name=f"run-{run_id}"
            )
            self.inflight[run_id] = task.remote(self.service.settings, run_id)
            return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reap()
                self._dispatch_waiting()
            except Exception:  # the database or the cluster is down: keep trying
                logger.exception("The Ray dispatcher hit an error; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def reap(self) -> None:
        """Forget finished tasks; back off from runs they did not execute."""
        import ray

        with self._lock:
            refs = dict(self.inflight)
        if not refs:
            return
        done, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=0)
        for run_id, ref in refs.items():
            if ref not in done:
                continue
            try:
                not_executed = ray.get(ref)
            except Exception:  # the task itself failed (retries used up): try again later
                logger.warning("Run %s: its executor task failed", run_id, exc_info=True)
                not_executed = True
            if not_executed:
                self._skip_until[run_id] = time.monotonic() + RETRY_AFTER_SECONDS
            with self._lock:
                self.inflight.pop(run_id, None)

    def _dispatch_waiting(self) -> None:
        now = time.monotonic()
        for run_id in self.service.store.recover_orphans(statuses=("queued", "running")):
            if len(self.active) >= self.size:
                return
            if self._skip_until.get(run_id, 0.0) <= now:
                self.dispatch(run_id)


class RayBackend:
    """`ExecutionBackend` on a Ray cluster (see the module docstring)."""

    def __init__(
        self, service: RunService, *, size: int | None = None, poll_seconds: float = POLL_SECONDS
    ):
        self.service = service
        connect(service.settings)
        size = size or service.settings.max_concurrent_runs
        self.pool = RayDispatcher(service, size=size, poll_seconds=poll_seconds)

    def start(self) -> None:
        self.pool.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.pool.stop(timeout)

    def submit(self, config: RunConfig, *, parent_run_id: str | None = None) -> RunRecord:
        record = self.service.create_run(config, parent_run_id=parent_run_id)
        self.pool.dispatch(record.id)
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
        self.pool.dispatch(run_id)

    def cancel(self, run_id: str, *, by: str) -> CancelOutcome:
        outcome = cancel_run(self.service.store, run_id, by=by)
        if outcome.status == "cancelled":  # nobody executes it: no node will collect its jobs
            kill_training_jobs(run_id)
        return outcome


class FollowedRuns:
    """`finetune-agent run|resume` with the Ray backend: submit, then follow the run's log.

    `start` and `resume` take `RunService`'s arguments and return the run once it waits at a
    gate or has ended, having passed every event of its log to `on_event` on the way; the rest
    of `RunService` (reading runs and their state) is the service's own.
    """

    def __init__(self, backend: RayBackend):
        self.backend = backend
        self.service = backend.service

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)

    def start(self, run_id: str, *, on_event: EventSink | None = None) -> RunRecord:
        """Submit a queued run and follow it."""
        after = self._last_seq(run_id)
        self.backend.pool.dispatch(run_id)
        return self.follow(run_id, after=after, on_event=on_event)

    def resume(
        self,
        run_id: str,
        *,
        decision: dict[str, Any] | None = None,
        interrupt_id: str | None = None,
        on_event: EventSink | None = None,
    ) -> RunRecord:
        """Answer the pending gate, or pick up a run a dead driver left, and follow it."""
        after = self._last_seq(run_id)
        run = self.service.require(run_id)
        if decision is not None:
            pending = [i["id"] for i in self.service.pending_interrupts(run_id)]
            chosen = interrupt_id or (pending[0] if len(pending) == 1 else None)
            if chosen is None:
                raise InvalidDecision(f"run {run_id} has no single pending gate to answer")
            self.backend.decide(run_id, interrupt_id=chosen, decision=decision)
        elif run.status in ("queued", "running"):
            self.service.store.append_event(
                run_id=run_id, kind="resumed", payload={"from": run.status}
            )
            if run.status == "queued" or self.service.store.is_interrupted(run):
                self.backend.pool.dispatch(run_id)
        return self.follow(run_id, after=after, on_event=on_event)

    def follow(self, run_id: str, *, after: int = 0, on_event: Callable | None = None) -> RunRecord:
        """Pass the run's events after seq `after` to `on_event` until it waits or ends; a run
        whose executor died meanwhile is submitted again."""
        store = self.service.store
        while True:
            run = self.service.require(run_id)
            for event in store.list_events(run_id=run_id, after_seq=after):
                after = event.seq
                if on_event is not None:
                    on_event(event.kind, event.payload)
            if run.status not in ("queued", "running") and not store.list_events(
                run_id=run_id, after_seq=after
            ):
                return run
            if run.status in ENDED:
                continue
            self.backend.pool.reap()
            orphaned = run.status == "running" and store.is_interrupted(run)
            if orphaned or run.status == "queued":
                self.backend.pool.dispatch(run_id)  # a no-op while our task is on it
            time.sleep(FOLLOW_SECONDS)

    def _last_seq(self, run_id: str) -> int:
        events = self.service.store.list_events(run_id=run_id, after_seq=0, limit=10**9)
        return events[-1].seq if events else 0
