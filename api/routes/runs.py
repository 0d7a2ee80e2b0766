"""`/runs`: submit a run config, list and inspect runs, cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from api.confinement import confine_config
from api.deps import BackendDep, ListingDep, ServiceDep, SettingsDep
from api.responses import FastJSONResponse
from api.schemas import (
    QUICKSTART_EXAMPLE,
    CancelResult,
    RunAccepted,
    RunDetail,
    RunsPublic,
    RunStatus,
)
from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.execution import describe_run

router = APIRouter(prefix="/runs", tags=["runs"])

ERRORS = {404: {"description": "No run with that id."}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunAccepted,
    summary="Start a run",
    responses={
        422: {"description": "The config is invalid or reads files outside the data roots."}
    },
)
def create_run(
    config: Annotated[
        RunConfig,
        Body(
            openapi_examples={
                "quickstart": {"summary": "The quickstart", "value": QUICKSTART_EXAMPLE}
            }
        ),
    ],
    settings: SettingsDep,
    backend: BackendDep,
) -> RunAccepted:
    """Validate a run config, create the run and queue it for a worker (FIFO).

    Relative data paths are read from the first data root that holds them all; every data
    path must lie under a data root (`FINETUNE_AGENT_DATA_ROOTS`).
    """
    record = backend.submit(confine_config(config, settings))
    return RunAccepted(
        id=record.id,
        status=record.status,
        run_dir=record.run_dir,
        events_url=f"/runs/{record.id}/events",
    )


# The two hot reads run on the event loop: each is a few indexed queries well under a
# millisecond (WAL/MVCC readers never wait for writers), cheaper than a thread-pool hop.
@router.get("", response_model=RunsPublic, summary="List runs")
async def list_runs(
    listing: ListingDep,
    status_: Annotated[
        RunStatus | None, Query(alias="status", description="Only runs with this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> FastJSONResponse:
    """Runs, newest first, one page at a time."""
    return FastJSONResponse(listing.page(status=status_, limit=limit, offset=offset))


@router.get("/{run_id}", response_model=RunDetail, responses=ERRORS, summary="Show a run")
async def get_run(run_id: str, service: ServiceDep) -> FastJSONResponse:
    """Status, pending gate, decisions, metrics and model: what `runs show --json` prints."""
    return FastJSONResponse(describe_run(service, run_id))


@router.post(
    "/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancelResult,
    responses={**ERRORS, 409: {"description": "The run has already ended."}},
    summary="Cancel a run",
)
def cancel_run(run_id: str, backend: BackendDep) -> CancelResult:
    """A queued or waiting run is cancelled at once; a running one stops at its next step."""
    outcome = backend.cancel(run_id, by="api")
    return CancelResult(id=outcome.id, status=outcome.status, message=outcome.message)
