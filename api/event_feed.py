"""Following a run's event log as it grows: the one loop behind `GET /runs/{id}/events` (JSON
server-sent events) and the dashboard's live run page (HTML fragments).

The log is a SQL table any process appends to, so the feed polls it: every `poll_seconds`
while nothing is new, at once again while pages keep coming. It ends after the run has ended
and every event was read; while idle it yields a keep-alive tick every `keepalive_seconds`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from llmfinetune_agent.execution import ENDED, RunService
from llmfinetune_agent.run_store import EventRecord

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 10.0


@dataclass(frozen=True)
class FeedItem:
    """An event, the run's new status, an idle tick (all None) or the end (`ended`)."""

    event: EventRecord | None = None
    ended: str | None = None
    status: str | None = None  # the run's status changed to this (seen between two reads)


async def follow_run(
    service: RunService,
    run_id: str,
    after: int,
    *,
    poll_seconds: float = POLL_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[FeedItem]:
    """The run's events after seq `after`, as they are written, then its end."""
    last_sent = time.monotonic()
    status = None
    while True:
        # Read the status first: events written before it ended are then all in the next read.
        run = await run_in_threadpool(service.require, run_id)
        if status is not None and run.status != status:
            # A status is settled after the event announcing it (an interrupt is logged, then
            # the run released as awaiting_approval): a reader may need this second notice.
            yield FeedItem(status=run.status)
        status = run.status
        events = await run_in_threadpool(service.store.list_events, run_id=run_id, after_seq=after)
        for event in events:
            after = event.seq
            yield FeedItem(event=event)
            last_sent = time.monotonic()
        if run.status in ENDED and not events:
            yield FeedItem(ended=run.status)
            return
        if events:
            continue  # maybe more than one page
        if time.monotonic() - last_sent > keepalive_seconds:
            yield FeedItem()
            last_sent = time.monotonic()
        await asyncio.sleep(poll_seconds)
