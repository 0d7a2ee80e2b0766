"""Cancelling a run: at once when nobody executes it, otherwise by asking its executor to stop.

A queued or waiting run (or one whose executor died) is claimed and released `cancelled`. A run
being executed gets a `cancel_requested` event in its log; the executing process, whichever
it is (a worker, `finetune-agent run`), watches for one with a `CancelWatch`: its training
node stops at the next step through `should_stop` (saving a checkpoint), and any other node's
next event raises `RunCancelled`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmfinetune_agent.execution.errors import ENDED, RunCancelled, RunEnded, RunNotFound
from llmfinetune_agent.execution.run_log import CANCEL_EVENT, NODE_STARTED
from llmfinetune_agent.run_store import make_owner

if TYPE_CHECKING:
    from llmfinetune_agent.run_store import RunStore

CHECK_SECONDS = 1.0
# Nodes the sink lets finish a cancel themselves: the trainer asks `should_stop` after every
# step and returns a "cancelled" training (its checkpoint saved); the orchestrator only routes,
# and sends that training to the run's end. Raising under them would lose the checkpoint.
STOPS_ITSELF = ("trainer", "orchestrator")


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel request did: `status` is the run's status after it."""

    id: str
    status: str
    message: str

    @property
    def stopping(self) -> bool:
        """True when the run was asked to stop and has not ended yet."""
        return self.status not in ENDED


def cancel_run(store: RunStore, run_id: str, *, by: str) -> CancelOutcome:
    """Cancel `run_id` now if nobody executes it, else ask its executor to stop.

    Raises `RunNotFound` for an unknown id and `RunEnded` for a run that has already ended.
    """
    run = _require(store, run_id)
    if run.status in ENDED:
        raise RunEnded(run)
    if cancel_now(store, run_id, by=by):
        return CancelOutcome(run_id, "cancelled", "cancelled")
    store.append_event(run_id=run_id, kind=CANCEL_EVENT, payload={"by": by})
    if cancel_now(store, run_id, by=by):  # it paused or its executor died while we asked
        return CancelOutcome(run_id, "cancelled", "cancelled")
    now = _require(store, run_id)
    if now.status == "cancelled":  # by our request, honoured by whoever held the run
        return CancelOutcome(run_id, "cancelled", "cancelled")
    if now.status in ENDED:  # it ended meanwhile, by itself
        return CancelOutcome(
            run_id, now.status, f"the run ended {now.status} before it could be cancelled"
        )
    return CancelOutcome(
        run_id, now.status, "cancel requested: the run stops at its next training step or node"
    )


def cancel_now(store: RunStore, run_id: str, *, by: str) -> bool:
    """Claim an unexecuted run (queued, waiting, or running with a dead claim) and end it;
    False when someone holds it (or it has ended)."""
    owner = make_owner()
    allowed = ("queued", "awaiting_approval", "running")
    if not store.claim_run(run_id=run_id, owner=owner, allowed_from=allowed):
        return False
    store.release_run(
        run_id=run_id,
        owner=owner,
        status="cancelled",
        error="cancelled on request",
        pending_interrupt=None,
    )
    store.append_event(run_id=run_id, kind="cancelled", payload={"by": by})
    return True


def _require(store: RunStore, run_id: str) -> Any:
    run = store.get_run(run_id=run_id)
    if run is None:
        raise RunNotFound(f"no run with id '{run_id}'")
    return run


class CancelWatch:
    """Whether a cancel was requested for a run since the watch began (see the module docstring).

    Asked from two threads: the stream's (the event sink `on_event`) and the training node's
    (`should_stop`, after every step). The store is read at most once per `CHECK_SECONDS`.
    """

    def __init__(self, store: RunStore, run_id: str, *, check_seconds: float = CHECK_SECONDS):
        self.store = store
        self.run_id = run_id
        self.check_seconds = check_seconds
        # Only requests made from now on count: an older one was for an earlier execution.
        latest = store.latest_event(run_id=run_id, kind=CANCEL_EVENT)
        self._after = latest.seq if latest else 0
        self._checked = 0.0
        self._cancelled = False
        self._lock = threading.Lock()
        self.node: str | None = None
        """The node running now (from `node_started` events)."""

    def requested(self, *, now: bool = False) -> bool:
        """True once a cancel was requested; `now` reads the store whatever the last read was."""
        with self._lock:
            if self._cancelled:
                return True
            moment = time.monotonic()
            if not now and moment - self._checked < self.check_seconds:
                return False
            self._checked = moment
            found = self.store.latest_event(
                run_id=self.run_id, kind=CANCEL_EVENT, after_seq=self._after
            )
            self._cancelled = found is not None
            return self._cancelled

    def should_stop(self) -> bool:
        """The training node's question after every step (`RunContext.should_stop`)."""
        return self.requested()

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        """The event sink: raise `RunCancelled` at the next event of a node that cannot stop
        by itself once a cancel was requested."""
        if kind == NODE_STARTED:
            self.node = payload.get("node")
        if self.node in STOPS_ITSELF:
            return
        if self.requested():
            raise RunCancelled(f"run {self.run_id} was cancelled on request")
