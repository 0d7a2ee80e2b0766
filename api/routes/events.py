"""`GET /runs/{run_id}/events`: the run's event log as server-sent events.

Each event is `id: <seq>`, `event: <kind>`, `data: <json>`. A client that reconnects with
`Last-Event-ID` gets only later events. The stream closes once the run has ended and every
event was sent; a comment line every few seconds keeps proxies from closing it meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep
from llmfinetune_agent.execution import ENDED, RunService

router = APIRouter(prefix="/runs", tags=["events"])

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 10.0


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events until the run ends.",
            "content": {
                "text/event-stream": {
                    "example": 'id: 7\nevent: interrupt\ndata: {"id": "...", "kind": "approve_plan"}\n\n'
                }
            },
        },
        404: {"description": "No run with that id."},
    },
    summary="Follow a run (server-sent events)",
)
def run_events(
    run_id: str,
    service: ServiceDep,
    last_event_id: Annotated[str | None, Header(description="Resume after this event id.")] = None,
    after: Annotated[
        int, Query(ge=0, description="Start after this seq (if no Last-Event-ID).")
    ] = 0,
) -> StreamingResponse:
    """Progress, routing, decisions and interrupts, as they happen; closes when the run ends."""
    service.require(run_id)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    return StreamingResponse(
        _stream(service, run_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(service: RunService, run_id: str, after: int) -> AsyncIterator[str]:
    last_sent = time.monotonic()
    while True:
        # Read the status first: events written before it ended are then all in the next read.
        run = await run_in_threadpool(service.require, run_id)
        events = await run_in_threadpool(service.store.list_events, run_id=run_id, after_seq=after)
        for event in events:
            after = event.seq
            data = json.dumps(
                {**event.payload, "seq": event.seq, "time": event.time.isoformat()}, default=str
            )
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
            last_sent = time.monotonic()
        if run.status in ENDED and not events:
            yield f"event: end\ndata: {json.dumps({'status': run.status})}\n\n"
            return
        if events:
            continue  # maybe more than one page
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
