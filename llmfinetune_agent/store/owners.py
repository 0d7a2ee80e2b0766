"""Who holds a run's claim: owner strings, telling a dead owner from a live one, heartbeats."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from types import TracebackType
from typing import Protocol


class LeasedStore(Protocol):
    """What a heartbeat needs of the run store (a protocol: `run_store` imports this module)."""

    lease_seconds: int

    def renew_lease(self, *, run_id: str, owner: str) -> bool:
        """Extend the owner's claim on the run; False when it has lost it."""
        ...


logger = logging.getLogger(__name__)


def make_owner() -> str:
    """A fresh claim owner, `"<hostname>:<pid>:<random>"`; unique per claim, not per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def parse_owner(owner: str) -> tuple[str, int] | None:
    """`(hostname, pid)` from an owner string, or None if it is not in the `make_owner` form."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def owner_process_is_gone(owner: str | None) -> bool:
    """True only when the owner is a process on this host that no longer exists.

    Owners on other hosts (or in an unknown format) are never declared dead here: only their
    lease running out frees their runs.
    """
    if owner is None:
        return True
    parsed = parse_owner(owner)
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    try:
        os.kill(parsed[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


class Heartbeat:
    """Renews a run's lease in a background thread while the run executes.

        with Heartbeat(store, run_id=run.id, owner=owner) as beat:
            graph.invoke(...)
            if beat.lost.is_set(): ...  # someone else took the run

    Renews every `lease_seconds / 4`, so a few missed beats never let the lease lapse.
    """

    def __init__(
        self, store: LeasedStore, *, run_id: str, owner: str, interval: float | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.interval = interval if interval is not None else store.lease_seconds / 4
        self.lost = threading.Event()
        """Set when a renewal found the run no longer ours."""
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renewed = self.store.renew_lease(run_id=self.run_id, owner=self.owner)
            except Exception:  # a database hiccup: try again next beat, the lease has slack
                logger.warning("Lease renewal of run %s failed", self.run_id, exc_info=True)
                continue
            if not renewed:
                logger.warning("Run %s is no longer owned by %s", self.run_id, self.owner)
                self.lost.set()
                return
            self.renewals += 1
