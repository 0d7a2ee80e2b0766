"""The local worker pool: `size` worker processes, each executing one run at a time.

The run store is the queue: `queued` runs wait there, oldest first, and every pool of every
process (API replicas, `finetune-agent worker` replicas sharing Postgres) polls it. The pool's
supervisor thread offers a run to an idle worker process, whose `RunService` claims it (a
compare-and-set on its row), so exactly one worker executes it. Runs left `running` by a
crashed process are picked up the same way once their owner is gone or their lease has run
out. An accepted decision is a `decision_accepted` event in the run's log, so whichever
worker takes the run resumes it with that decision.

Runs execute in worker processes, not threads: runs in one process share accelerate's
process-wide `AcceleratorState`, torch's thread pools and half-finished lazy imports, and
two at once failed. Workers are started with `spawn` (never fork a process that may have
imported torch) and live as long as the pool, so the seconds a fresh Python needs to import
torch and transformers are paid once per slot, not once per run or per gate. A worker that
dies (SIGKILL, out of memory) is replaced at once; its run's claim names the dead pid, so the
run is an orphan and is resumed from its checkpoint like any crashed run. (As with any
`spawn`, a script that starts a pool needs the `if __name__ == "__main__":` guard.)
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from llmfinetune_agent.execution.service import RunService
from llmfinetune_agent.execution.worker_process import serve_runs
from llmfinetune_agent.run_store import make_owner

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
RETRY_AFTER_SECONDS = 5.0
RESTART_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0)
"""Seconds before restarting a worker that died before it was ready (a crash loop, e.g. the
database is down), by how many times in a row that happened."""
MAX_DEATHS = 3
"""A run whose worker process dies this many times in a row is failed, not retried forever."""


@dataclass
class _Slot:
    """One worker process of the pool and what it is doing."""

    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    ready: bool = False
    """It has opened its service and waits for run ids."""
    run_id: str | None = None
    restart_at: float = 0.0
    failed_starts: int = 0


class RunWorkerPool:
    """`size` worker processes taking runs from the store's queue (see the module docstring)."""

    def __init__(self, service: RunService, *, size: int, poll_seconds: float = POLL_SECONDS):
        self.service = service
        self.size = size
        self.poll_seconds = poll_seconds
        self.active: set[str] = set()
        """Runs a worker process of this pool is executing."""
        self._skip_until: dict[str, float] = {}
        self._deaths: dict[str, int] = {}
        self._slots = [_Slot(i) for i in range(size)]
        self._context = multiprocessing.get_context("spawn")
        self._wake_read, self._wake_write = os.pipe()
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)
        self._look = True
        self._closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="run-workers", daemon=True)

    def start(self) -> None:
        """Start the worker processes (their first poll recovers runs a crash left behind)."""
        if self.size:
            atexit.register(self.stop)  # else multiprocessing's exit hook waits on idle workers
            self._thread.start()

    def notify(self) -> None:
        """A run was queued here: look now rather than at the next poll."""
        with self._lock, contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            if not self._closed:
                os.write(self._wake_write, b"!")

    def pending(self) -> int:
        """Runs waiting in the store for a worker (any process's)."""
        return len(self.service.store.recover_orphans(statuses=("queued",)))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking runs and end the worker processes within about `timeout` s.

        An idle worker closes its service and exits; a worker in the middle of a run is
        terminated (SIGTERM), leaving the run `running` under its dead pid: the next worker,
        here or in another process, resumes it from its last checkpoint. `active` keeps the
        runs that were stopped that way.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        atexit.unregister(self.stop)
        self.notify()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._end_workers(deadline)
        with self._lock:  # under the lock: a late `notify` must not write to a reused fd
            self._closed = True
            os.close(self._wake_read)
            os.close(self._wake_write)

    # --- the supervisor thread ----------------------------------------------------------

    def _supervise(self) -> None:
        last_look = 0.0
        while not self._stop.is_set():
            try:
                self._start_missing()
                now = time.monotonic()
                if self._look or now - last_look >= self.poll_seconds:
                    self._look, last_look = False, now
                    self._dispatch()
                self._wait(self._next_timeout(last_look))
            except Exception:  # the database is down, say: keep supervising, try again soon
                logger.exception("The run worker pool hit an error; retrying")
                self._stop.wait(self.poll_seconds)

    def _next_timeout(self, last_look: float) -> float:
        now = time.monotonic()
        due = [last_look + self.poll_seconds]
        due += [s.restart_at for s in self._slots if s.process is None]
        return max(0.01, min(due) - now)

    def _start_missing(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.process is None and slot.restart_at <= now:
                self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = self._context.Pipe()
        root = logging.getLogger()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        process = self._context.Process(
            target=serve_runs,
            args=(self.service.settings, theirs),
            kwargs={
                "parent_pid": os.getpid(),
                "threads": max(1, (cpus or 1) // self.size),  # workers share the cores
                "log_level": root.level if root.handlers else None,
            },
            name=f"run-worker-{slot.index}",
        )
        process.start()
        theirs.close()
        slot.process, slot.conn, slot.ready, slot.run_id = process, ours, False, None

    def _dispatch(self) -> None:
        """Offer the oldest queued (or orphaned running) runs to the idle workers."""
        idle = [s for s in self._slots if s.ready and s.run_id is None]
        if not idle:
            return
        candidates = self.service.store.recover_orphans(statuses=("queued", "running"))
        now = time.monotonic()
        for run_id in candidates:
            if not idle:
                return
            if run_id in self.active or self._skip_until.get(run_id, 0.0) > now:
                continue
            slot = idle.pop(0)
            try:
                slot.conn.send(run_id)
            except OSError:  # it just died: its sentinel says so on the next wait
                continue
            slot.run_id = run_id
            with self._lock:
                self.active.add(run_id)

    def _wait(self, timeout: float) -> None:
        live = [s for s in self._slots if s.process is not None]
        objects: list = [self._wake_read]
        objects += [s.conn for s in live] + [s.process.sentinel for s in live]
        ready = wait(objects, timeout)
        if self._wake_read in ready:
            with contextlib.suppress(OSError):
                os.read(self._wake_read, 4096)
            self._look = True
        for slot in live:
            gone = slot.process.sentinel in ready
            if slot.conn in ready:
                gone = not self._receive(slot) or gone
            if gone:
                self._replace(slot)

    def _receive(self, slot: _Slot) -> bool:
        """Read the worker's messages; False when its pipe has closed (it died)."""
        try:
            while slot.conn.poll():
                message = slot.conn.recv()
                if message[0] == "ready":
                    slot.ready, slot.failed_starts = True, 0
                elif message[0] == "done":
                    self._done(slot, run_id=message[1], retry=message[2])
                self._look = True
        except (EOFError, OSError):
            return False
        return True

    def _done(self, slot: _Slot, *, run_id: str, retry: bool) -> None:
        slot.run_id = None
        self._deaths.pop(run_id, None)
        with self._lock:
            self.active.discard(run_id)
        if retry:
            self._skip_until[run_id] = time.monotonic() + RETRY_AFTER_SECONDS

    def _replace(self, slot: _Slot) -> None:
        """A worker died: reap it, schedule its replacement, and let its run be resumed."""
        process = slot.process
        process.join(5)  # reaps it: a zombie's pid would still look alive to claim checks
        if process.is_alive():  # its pipe closed but it lives on: end it
            process.kill()
            process.join(5)
        slot.conn.close()
        code, run_id = process.exitcode, slot.run_id
        if slot.ready:  # it worked before: replace at once
            delay = 0.0
        else:
            delay = RESTART_DELAYS[min(slot.failed_starts, len(RESTART_DELAYS) - 1)]
            slot.failed_starts += 1
            logger.warning("Worker process %s exited while starting (%s)", slot.index, _how(code))
        slot.process, slot.conn, slot.ready, slot.run_id = None, None, False, None
        slot.restart_at = time.monotonic() + delay
        if run_id is not None:
            self._lost(run_id, code)
        self._look = True

    def _lost(self, run_id: str, code: int | None) -> None:
        with self._lock:
            self.active.discard(run_id)
        deaths = self._deaths[run_id] = self._deaths.get(run_id, 0) + 1
        if deaths < MAX_DEATHS:
            logger.warning(
                "Run %s: its worker process died (%s); a new worker resumes it from its "
                "last checkpoint",
                run_id,
                _how(code),
            )
            return
        self._deaths.pop(run_id)
        error = (
            f"the worker process executing this run died {deaths} times in a row "
            f"(last: {_how(code)}); out of memory? Try a smaller batch or model"
        )
        logger.error("Run %s failed: %s", run_id, error)
        store, owner = self.service.store, make_owner()
        if store.claim_run(run_id=run_id, owner=owner, allowed_from=("running",)):
            store.append_event(run_id=run_id, kind="failed", payload={"error": error})
            store.release_run(run_id=run_id, owner=owner, status="failed", error=error)

    # --- stopping -----------------------------------------------------------------------

    def _end_workers(self, deadline: float) -> None:
        live = [s for s in self._slots if s.process is not None]
        for slot in live:
            if slot.ready and slot.run_id is None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)  # idle: close its service and exit
            else:
                slot.process.terminate()
        for slot in live:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(5)
            slot.conn.close()


def _how(exitcode: int | None) -> str:
    """A worker's exit code in words."""
    if exitcode is not None and exitcode < 0:
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
