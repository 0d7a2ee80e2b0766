"""`GET /runs/{run_id}/events`: the run's event log as server-sent events.

Each event is `id: <seq>`, `event: <kind>`, `data: <json>`. A client that reconnects with
`Last-Event-ID` gets only later events. A position (`Last-Event-ID` or `after`) is a whole
number from 0 to 2^31-1, the database's range; anything else is a 422 before the stream starts.
The stream closes once the run has ended and every
event was sent; a comment line every few seconds keeps proxies from closing it meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import ServiceDep
from api.event_feed import follow_run
from api.path_strings import invalid
from llmfinetune_agent.execution import RunService

router = APIRouter(prefix="/runs", tags=["events"])

MAX_SEQ = 2**31 - 1  # run_events.seq is an INTEGER: 32 bits on PostgreSQL


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
        422: {"description": "A position that is not a whole number from 0 to 2^31-1."},
    },
    summary="Follow a run (server-sent events)",
)
def run_events(
    run_id: str,
    service: ServiceDep,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this event id: a whole number from 0 to 2^31-1."),
    ] = None,
    after: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_SEQ,
            description="Start after this seq, from 0 to 2^31-1 (if no Last-Event-ID).",
        ),
    ] = 0,
) -> StreamingResponse:
    """Progress, routing, decisions and interrupts, as they happen; closes when the run ends.

    `Last-Event-ID` (sent by a reconnecting `EventSource`) wins over `after`; either must be
    a whole number from 0 to 2^31-1, else the answer is 422.
    """
    start = after if not last_event_id else last_event_position(last_event_id)
    service.require(run_id)
    return StreamingResponse(
        _stream(service, run_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def last_event_position(text: str) -> int:
    """`Last-Event-ID` as a seq, or a 422 naming the header (`str.isdigit` takes '²')."""
    digits = text.strip()
    if digits.isascii() and digits.isdigit() and len(digits) <= 19 and int(digits) <= MAX_SEQ:
        return int(digits)
    raise invalid(
        ("header", "last-event-id"),
        "Last-Event-ID must be a whole number from 0 to 2^31-1 (the id of an event received)",
        text,
    )


async def _stream(service: RunService, run_id: str, after: int) -> AsyncIterator[str]:
    async for item in follow_run(service, run_id, after):
        if item.event is not None:
            event = item.event
            data = json.dumps(
                {**event.payload, "seq": event.seq, "time": event.time.isoformat()}, default=str
            )
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
        elif item.ended is not None:
            yield f"event: end\ndata: {json.dumps({'status': item.ended})}\n\n"
        elif item.status is None:
            yield ": keep-alive\n\n"
