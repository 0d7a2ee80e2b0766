"""Dependencies as annotated aliases: the service, its settings, the execution backend (and its
local worker pool), the API key.

All are `async def`: they only read app state, and FastAPI runs a plain `def` dependency in
its thread pool, a hop that costs more than the work (benchmarks/api_latency.py)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.generation import ModelCache
from api.listing import ListingCache
from api.path_strings import invalid, text_problem
from llmfinetune_agent.execution import ExecutionBackend, RunService, RunWorkerPool
from llmfinetune_agent.settings import Settings

_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <FINETUNE_AGENT_API_KEY>`"
)
# How `langgraph-sdk` and Agent Inbox send a key: the same key is accepted there.
_x_api_key = APIKeyHeader(
    name="X-Api-Key", auto_error=False, description="The same key, as LangGraph clients send it."
)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_service(request: Request) -> RunService:
    return request.app.state.service


async def get_backend(request: Request) -> ExecutionBackend:
    return request.app.state.backend


async def get_pool(request: Request) -> RunWorkerPool:
    return request.app.state.backend.pool


async def get_models(request: Request) -> ModelCache:
    return request.app.state.models


async def get_listing(request: Request) -> ListingCache:
    return request.app.state.listing


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RunService, Depends(get_service)]
BackendDep = Annotated[ExecutionBackend, Depends(get_backend)]
# The backend's executors: the local pool, or the Ray dispatcher (its size, its queue).
PoolDep = Annotated[RunWorkerPool, Depends(get_pool)]
ModelCacheDep = Annotated[ModelCache, Depends(get_models)]
ListingDep = Annotated[ListingCache, Depends(get_listing)]


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Depends(_x_api_key)],
) -> None:
    """With an API key configured, the request must carry it as a bearer token (or in
    `X-Api-Key`, as LangGraph clients send it); 401 otherwise."""
    if settings.api_key is None:
        return
    given = credentials.credentials if credentials is not None else (x_api_key or "")
    if not key_matches(given, settings.api_key):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


AuthDep = Depends(require_api_key)


def key_matches(given: str, key: str) -> bool:
    """Compared in constant time (no timing hint about how much of the key was right)."""
    return secrets.compare_digest(given.encode(), key.encode())


async def refuse_unfit_params(request: Request) -> None:
    """422 for a path or query parameter holding a NUL byte: every id is looked up in the
    database, and PostgreSQL refuses NUL in text (a 500 otherwise)."""
    for where, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            if problem := text_problem(value):
                raise invalid((where, name), f"the value {problem}", value)


SafeParamsDep = Depends(refuse_unfit_params)
