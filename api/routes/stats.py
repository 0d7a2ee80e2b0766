"""`/stats`: runs, gates, interactions and feedback in numbers."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.schemas import StatsPublic
from llmfinetune_agent.stats import service_stats

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("", response_model=StatsPublic, summary="Service statistics")
def get_stats(service: ServiceDep) -> StatsPublic:
    """Runs by status and method with the time and steps they spent; gates answered and how
    long they waited; interactions served with latency percentiles and tokens; feedback counts.
    `finetune-agent stats` prints the same."""
    return StatsPublic(**service_stats(service.store.database_url))
