"""The run's event log as a channel between processes: what execution writes and reads back.

Any process may append a request to a run's log; the one executing the run reads it: a
`decision_accepted` event carries the decision a worker resumes the run with, and a
`cancel_requested` event asks the executing process to stop the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmfinetune_agent.run_store import EventRecord, RunStore

CANCEL_EVENT = "cancel_requested"
DECISION_EVENT = "decision_accepted"
NODE_STARTED = "node_started"


def all_events(store: RunStore, run_id: str, after: int = 0) -> list[EventRecord]:
    """Every event of the run after `after`, in order (read page by page)."""
    events: list[EventRecord] = []
    while batch := store.list_events(run_id=run_id, after_seq=after):
        events.extend(batch)
        after = batch[-1].seq
    return events
