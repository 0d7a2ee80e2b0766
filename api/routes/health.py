"""`GET /healthz`: liveness, without authentication."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PoolDep, SettingsDep
from api.schemas import Health
from llmfinetune_agent.settings import database_backend

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Is the service up?")
def healthz(settings: SettingsDep, pool: PoolDep) -> Health:
    """Always 200 while the process serves requests; no API key needed."""
    return Health(
        status="ok",
        database=database_backend(settings.database_url),
        workers=pool.size,
        queued_jobs=pool.pending(),
    )
