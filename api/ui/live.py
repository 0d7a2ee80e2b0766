"""`GET /ui/runs/{id}/live`: the run page's server-sent events, as HTML fragments for htmx.

Each event of the run's log becomes a `tail` line (prepended to the event log); a training step
also becomes a `progress` panel carrying its chart point (`data-point`, read by app.js), and an
event that changes the run's status, path or decisions a `state` notice (the panels fetch
themselves again). `end` closes the stream when the run is over. The feed is the one behind
`/runs/{id}/events`, polled more often: the page should follow within a fraction of a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep
from api.event_feed import follow_run
from api.routes.events import MAX_SEQ, last_event_position
from api.ui.deps import SessionDep
from api.ui.rendering import TEMPLATES
from api.ui.run_view import PROGRESS, STATE_KINDS, progress_view, tail_entry
from llmfinetune_agent.execution import RunService
from llmfinetune_agent.execution.run_log import NODE_STARTED, all_events

router = APIRouter(prefix="/ui")

LIVE_POLL_SECONDS = 0.1


@router.get("/runs/{run_id}/live", response_class=StreamingResponse)
def live(
    run_id: str,
    session: SessionDep,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """HTML fragments for the run page as the run's events arrive; ends with the run."""
    service.require(run_id)
    # The REST stream's reading: `str.isdigit` takes '²', and int() of 5,000 digits raises.
    start = last_event_position(last_event_id) if last_event_id else after
    return StreamingResponse(
        _fragments(service, run_id, min(start, MAX_SEQ)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _fragments(service: RunService, run_id: str, after: int) -> AsyncIterator[str]:
    started = await run_in_threadpool(_trainer_started, service, run_id)
    async for item in follow_run(service, run_id, after, poll_seconds=LIVE_POLL_SECONDS):
        event = item.event
        if item.ended is not None:
            yield message("end", item.ended)
            return
        if item.status is not None:
            yield message("state", item.status)
            continue
        if event is None:
            yield ": keep-alive\n\n"
            continue
        if event.kind == NODE_STARTED and event.payload.get("node") == "trainer":
            started = event.time
        parts = [message("tail", render("_event.html", event=tail_entry(event)), event.seq)]
        if event.kind == PROGRESS:
            progress = progress_view(event, started)
            parts.append(message("progress", render("_progress.html", progress=progress)))
        if event.kind in STATE_KINDS:
            parts.append(message("state", event.kind))
        yield "".join(parts)


def _trainer_started(service: RunService, run_id: str) -> datetime | None:
    """When the trainer node last started (the elapsed time counts from there)."""
    started = None
    for event in all_events(service.store, run_id):
        if event.kind == NODE_STARTED and event.payload.get("node") == "trainer":
            started = event.time
    return started


def render(name: str, **context) -> str:
    return TEMPLATES.get_template(name).render(**context)


def message(kind: str, data: str, seq: int | None = None) -> str:
    """One server-sent event; each line of `data` gets its own `data:` field."""
    head = f"id: {seq}\n" if seq is not None else ""
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"{head}event: {kind}\n{lines}\n"
