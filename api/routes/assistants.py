"""`/info` and `/assistants`: what a LangGraph client asks a server before using it.

One graph (`finetune_agent`) served by one assistant; see `api/routes/threads.py` for what
those clients can do with it.
"""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from api import langgraph_examples as ex
from api import langgraph_shapes as lg
from api.responses import FastJSONResponse

router = APIRouter(tags=["langgraph"])


class AssistantSearch(BaseModel):
    """`POST /assistants/search` (unknown fields are ignored)."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"graph_id": "finetune_agent"}]}
    )

    graph_id: str | None = Field(None, max_length=200)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/info", responses=ex.json_example(ex.INFO), summary="Server info (LangGraph)")
def info() -> FastJSONResponse:
    """What this server offers, in LangGraph Server's terms: assistants and threads, no crons."""
    return FastJSONResponse(
        {
            "version": version("finetune-agent"),
            "langgraph_py_version": version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "graphs": [lg.GRAPH_ID],
        }
    )


@router.post(
    "/assistants/search",
    responses=ex.json_example([lg.assistant()]),
    summary="Search assistants (LangGraph)",
)
def search_assistants(body: AssistantSearch) -> FastJSONResponse:
    """The one assistant (the `finetune_agent` graph), if it matches `graph_id`."""
    found = [lg.assistant()] if body.graph_id in (None, lg.GRAPH_ID) else []
    return FastJSONResponse(found[body.offset : body.offset + body.limit])


@router.get(
    "/assistants/{assistant_id}",
    responses={404: {"description": "No such assistant."}, **ex.json_example(lg.assistant())},
    summary="Get an assistant (LangGraph)",
)
def get_assistant(assistant_id: str) -> FastJSONResponse:
    """The assistant, by its id or its graph id."""
    if not lg.is_our_assistant(assistant_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no assistant '{assistant_id}'")
    return FastJSONResponse(lg.assistant())
