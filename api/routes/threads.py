"""`/threads`: the subset of LangGraph Server's API that its approval clients call.

`langgraph-sdk` and Agent Inbox list waiting runs (`POST /threads/search`, `GET /threads/{id}`,
`GET /threads/{id}/state`) and answer their gates with a run carrying `command.resume`
(`POST /threads/{id}/runs`, `/runs/wait`, `/runs/stream`). An answer goes through exactly the
checks of `POST /runs/{id}/interrupts/{interrupt_id}`: the interrupt must be pending, the run is
claimed by a compare-and-set (of two answers one wins, the other gets 409), and an edit is a
config patch validated first. New runs are started with `POST /runs`, not here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import langgraph_examples as ex
from api import langgraph_shapes as lg
from api.decisions import check_decision
from api.deps import BackendDep, ServiceDep, SettingsDep
from api.langgraph_resume import ResumeError, read_resume
from api.path_strings import refuse_unfit_text
from api.responses import FastJSONResponse
from api.schemas import DecisionIn
from llmfinetune_agent.execution import ENDED, RunService
from llmfinetune_agent.execution.run_log import DECISION_EVENT, all_events

router = APIRouter(prefix="/threads", tags=["langgraph"])

NOT_FOUND = {404: {"description": "No run (thread) with that id."}}
WAIT_POLL_SECONDS = 0.2
SEARCH_CAP = 10_000  # runs read per status for one search (pages beyond are not searched)
STREAM_EXAMPLE = (
    'event: metadata\ndata: {"run_id": "...", "attempt": 1}\n\nevent: values\ndata: {...}\n\n'
)


class ThreadSearch(BaseModel):
    """`POST /threads/search` as `langgraph-sdk` sends it (unknown fields are ignored)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"status": "interrupted", "metadata": {"graph_id": "finetune_agent"}}]
        },
    )

    metadata: dict[str, Any] | None = Field(None, description="e.g. {'graph_id': ...}")
    values: dict[str, Any] | None = Field(None, description="Match the listed values.")
    ids: list[str] | None = Field(None, max_length=1000)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=SEARCH_CAP)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class RunCommand(BaseModel):
    """LangGraph's `Command`: only `resume` is served."""

    model_config = ConfigDict(extra="ignore")

    resume: Any = Field(None, description="The answer to the pending gate.")
    goto: Any = None
    update: Any = None


class RunCreate(BaseModel):
    """A LangGraph run on a thread; here only an answer to its pending gate."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"assistant_id": "finetune_agent", "command": {"resume": {"decision": "approve"}}}
            ]
        },
    )

    assistant_id: str = Field(lg.GRAPH_ID, max_length=200)
    input: Any = None
    command: RunCommand | None = None


@router.post("/search", responses=ex.json_example([ex.THREAD]), summary="Search threads")
async def search_threads(body: ThreadSearch, service: ServiceDep) -> FastJSONResponse:
    """Runs as LangGraph threads, newest first by default; `status="interrupted"` lists the
    runs waiting at a gate, each with its interrupt (LangChain's HITL request inside)."""
    threads = await run_in_threadpool(_search, service, body)
    return FastJSONResponse(threads)


def _search(service: RunService, body: ThreadSearch) -> list[dict[str, Any]]:
    statuses = lg.RUN_STATUSES_OF_THREAD[body.status] if body.status else (None,)
    runs = []
    for run_status in statuses:
        runs += service.store.run_summaries(status=run_status, limit=SEARCH_CAP, offset=0)[0]
    wanted = set(body.ids) if body.ids else None
    threads = [lg.thread_of(run) for run in runs if wanted is None or run["id"] in wanted]
    threads = [t for t in threads if lg.matches(t, metadata=body.metadata, values=body.values)]
    threads.sort(key=lambda t: t[body.sort_by], reverse=body.sort_order == "desc")
    return threads[body.offset : body.offset + body.limit]


@router.get(
    "/{thread_id}", responses={**NOT_FOUND, **ex.json_example(ex.THREAD)}, summary="Get a thread"
)
def get_thread(thread_id: str, service: ServiceDep) -> FastJSONResponse:
    """One run as a LangGraph thread."""
    return FastJSONResponse(lg.thread_of(vars(service.require(thread_id))))


@router.get(
    "/{thread_id}/state",
    responses={**NOT_FOUND, **ex.json_example(ex.STATE)},
    summary="Thread state",
)
def get_thread_state(thread_id: str, service: ServiceDep) -> FastJSONResponse:
    """The run's graph state: values, next nodes, tasks and the gate pending (if any)."""
    run = vars(service.require(thread_id))
    snapshot = service.graph.get_state({"configurable": {"thread_id": thread_id}})
    return FastJSONResponse(lg.thread_state(run, snapshot))


ANSWER_ERRORS = {
    **NOT_FOUND,
    409: {"description": "Nothing is pending, that gate was already answered, or it is busy."},
    422: {"description": "Not an answer to a gate, or an invalid decision or edit."},
}


@router.post(
    "/{thread_id}/runs",
    responses={**ANSWER_ERRORS, **ex.json_example(ex.RUN)},
    summary="Answer a gate",
)
def create_run(
    thread_id: str,
    body: RunCreate,
    service: ServiceDep,
    settings: SettingsDep,
    backend: BackendDep,
) -> FastJSONResponse:
    """Answer the thread's pending gate with `command.resume`; returns the run (pending)."""
    interrupt_id, _ = _answer(thread_id, body, service, settings, backend)
    run_id = lg.answer_run_id(thread_id, interrupt_id)
    return FastJSONResponse(_find_answer(service, thread_id, run_id))


@router.post(
    "/{thread_id}/runs/wait",
    responses={**ANSWER_ERRORS, **ex.json_example(ex.OUTPUT)},
    summary="Answer and wait",
)
async def wait_run(
    thread_id: str,
    body: RunCreate,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    backend: BackendDep,
) -> FastJSONResponse:
    """Answer the pending gate, then wait until the run stops at its next gate or ends; the
    answer is the thread's values (with `__interrupt__` when a gate waits)."""
    interrupt_id, _ = await run_in_threadpool(_answer, thread_id, body, service, settings, backend)
    run = await _settled(service, thread_id, request)
    return FastJSONResponse(await run_in_threadpool(_output, service, run))


@router.post(
    "/{thread_id}/runs/stream",
    response_class=StreamingResponse,
    responses={
        **ANSWER_ERRORS,
        200: {
            "description": "`metadata`, then `values` when the run stops again.",
            "content": {"text/event-stream": {"example": STREAM_EXAMPLE}},
        },
    },
    summary="Answer and stream",
)
async def stream_run(
    thread_id: str,
    body: RunCreate,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    backend: BackendDep,
) -> StreamingResponse:
    """Answer the pending gate; the stream sends `metadata` (the run id), then `values` once
    the run stops at its next gate or ends. Follow the run's progress at `/runs/{id}/events`."""
    interrupt_id, _ = await run_in_threadpool(_answer, thread_id, body, service, settings, backend)

    async def events() -> AsyncIterator[str]:
        meta = {"run_id": lg.answer_run_id(thread_id, interrupt_id), "attempt": 1}
        yield f"event: metadata\ndata: {json.dumps(meta)}\n\n"
        run = await _settled(service, thread_id, request)
        values = await run_in_threadpool(_output, service, run)
        yield f"event: values\ndata: {json.dumps(values, default=str)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get(
    "/{thread_id}/runs",
    responses={**NOT_FOUND, **ex.json_example([ex.RUN])},
    summary="A thread's runs",
)
def list_runs(
    thread_id: str,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> FastJSONResponse:
    """Every accepted answer to one of the run's gates, newest first."""
    runs = list(reversed(_answer_runs(service, thread_id)))
    return FastJSONResponse(runs[offset : offset + limit])


@router.get(
    "/{thread_id}/runs/{run_id}",
    responses={**NOT_FOUND, **ex.json_example(ex.RUN)},
    summary="Get a run",
)
def get_run(thread_id: str, run_id: str, service: ServiceDep) -> FastJSONResponse:
    """One answer's run: pending or running until the run stops again, then success."""
    return FastJSONResponse(_find_answer(service, thread_id, run_id))


@router.get(
    "/{thread_id}/runs/{run_id}/join",
    responses={**NOT_FOUND, **ex.json_example(ex.OUTPUT)},
    summary="Join a run",
)
async def join_run(
    thread_id: str, run_id: str, request: Request, service: ServiceDep
) -> FastJSONResponse:
    """Wait for an answer's run to finish (the run stops at a gate or ends); its values."""
    await run_in_threadpool(_find_answer, service, thread_id, run_id)
    run = await _settled(service, thread_id, request)
    return FastJSONResponse(await run_in_threadpool(_output, service, run))


# --- helpers ----------------------------------------------------------------------------


def _answer(
    thread_id: str, body: RunCreate, service: RunService, settings: Any, backend: Any
) -> tuple[str, dict[str, Any]]:
    """Accept the answer through the same path as `POST /runs/{id}/interrupts/{id}`."""
    if not lg.is_our_assistant(body.assistant_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no assistant '{body.assistant_id}': use '{lg.GRAPH_ID}' or '{lg.ASSISTANT_ID}'",
        )
    run = service.require(thread_id)
    command = body.command
    if command is None or command.resume is None or command.goto or command.update:
        raise _unprocessable(
            ["body", "command"],
            "only command.resume (an answer to the pending gate) is served here; start a run "
            "with POST /runs",
        )
    try:
        interrupt_id, decision = read_resume(command.resume)
        checked = DecisionIn.model_validate(decision).model_dump(exclude_none=True)
    except (ResumeError, ValueError) as exc:
        raise _unprocessable(["body", "command", "resume"], _message(exc)) from None
    refuse_unfit_text(checked, ("body", "command", "resume"))
    if interrupt_id is None:
        if run.status != "awaiting_approval" or not run.pending_interrupt:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"thread {thread_id} has no gate pending (the run is {run.status})",
            )
        interrupt_id = run.pending_interrupt["id"]
    backend.decide(
        thread_id,
        interrupt_id=interrupt_id,
        decision=checked,
        check=lambda value, config: check_decision(value, config, settings),
    )
    return interrupt_id, checked


def _message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: name the field
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors())
    return str(exc)


def _unprocessable(loc: list[str], message: str) -> HTTPException:
    detail = [{"loc": loc, "msg": message, "type": "langgraph_request"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


async def _settled(service: RunService, thread_id: str, request: Request) -> dict[str, Any]:
    """The run once it waits at a gate or has ended (polling the run store)."""
    while True:
        run = vars(await run_in_threadpool(service.require, thread_id))
        if run["status"] == "awaiting_approval" or run["status"] in ENDED:
            return run
        if await request.is_disconnected():
            raise asyncio.CancelledError
        await asyncio.sleep(WAIT_POLL_SECONDS)


def _output(service: RunService, run: dict[str, Any]) -> dict[str, Any]:
    pending = service.pending_interrupts(run["id"]) if run["status"] == "awaiting_approval" else []
    return lg.run_output(run, service.state_values(run["id"]), pending)


def _answer_runs(service: RunService, thread_id: str) -> list[dict[str, Any]]:
    run = vars(service.require(thread_id))
    return [
        lg.answer_run(run, e.payload.get("interrupt_id"), e.time, e.payload.get("decision") or {})
        for e in all_events(service.store, thread_id)
        if e.kind == DECISION_EVENT
    ]


def _find_answer(service: RunService, thread_id: str, run_id: str) -> dict[str, Any]:
    for answer in _answer_runs(service, thread_id):
        if answer["run_id"] == run_id:
            return answer
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"thread {thread_id} has no run '{run_id}'")
