"""`/runs/{run_id}/history` and `/runs/{run_id}/fork`: a run's checkpoints, and a new run
continuing from one of them with a config patch (time travel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.confinement import check_paths
from api.deps import PoolDep, ServiceDep, SettingsDep
from api.path_strings import invalid, refuse_unfit_text
from api.schemas import RunAccepted
from llmfinetune_agent.config import ConfigError, ConfigIssue, RunConfig, apply_patch
from llmfinetune_agent.execution import InvalidDecision
from llmfinetune_agent.fork import (
    CheckpointWithoutState,
    find_checkpoint,
    fork_run,
    run_history,
)
from llmfinetune_agent.sections import SECTIONS
from llmfinetune_agent.settings import Settings

router = APIRouter(prefix="/runs/{run_id}", tags=["history"])


class CheckpointPublic(BaseModel):
    """One checkpoint of a run's graph state."""

    checkpoint_id: str = Field(description="Pass it as `checkpoint_id` to fork from here.")
    parent_checkpoint_id: str | None = None
    step: int | None = Field(None, description="The graph step that wrote it.")
    source: str | None = Field(None, description="input, loop or update.")
    time: str | None = Field(None, description="When it was written (ISO 8601).")
    node: list[str] = Field(default_factory=list, description="The node(s) that wrote it.")
    next: list[str] = Field(default_factory=list, description="The node(s) scheduled next.")
    interrupts: list[str | None] = Field(default_factory=list)


class CheckpointsPublic(BaseModel):
    """A run's checkpoints, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "checkpoint_id": "1f1e6323-e34c-641f-8012-b74d32e70629",
                            "parent_checkpoint_id": "1f1e6323-e32e-65dd-8011-9a1d815ef6d1",
                            "step": 18,
                            "source": "loop",
                            "time": "2026-11-22T05:04:49.159454+00:00",
                            "node": ["finalize"],
                            "next": ["orchestrator"],
                            "interrupts": [],
                        }
                    ],
                    "count": 1,
                }
            ]
        }
    )

    data: list[CheckpointPublic]
    count: int


class ForkIn(BaseModel):
    """Where to fork from and what to change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"checkpoint_id": "1f0c...", "patch": {"training": {"learning_rate": 0.0001}}}
            ]
        },
    )

    checkpoint_id: str = Field(min_length=1, description="A checkpoint id (or unique prefix).")
    patch: dict[str, Any] | None = Field(None, description="A config patch for the new run.")


@router.get(
    "/history",
    response_model=CheckpointsPublic,
    responses={404: {"description": "No run with that id."}},
    summary="A run's checkpoints",
)
def list_history(run_id: str, service: ServiceDep) -> CheckpointsPublic:
    """Every checkpoint of the run, newest first, with the node that wrote it and the next."""
    history = [CheckpointPublic(**c) for c in run_history(service, run_id)]
    return CheckpointsPublic(data=history, count=len(history))


@router.post(
    "/fork",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunAccepted,
    responses={
        404: {"description": "No such run, or no such checkpoint."},
        422: {
            "description": "The patch is not a valid config, names disallowed or missing paths, "
            "switches to a method the prepared data cannot feed, or holds a NUL byte."
        },
    },
    summary="Fork a run from a checkpoint",
)
def fork(
    run_id: str, body: ForkIn, service: ServiceDep, settings: SettingsDep, pool: PoolDep
) -> RunAccepted:
    """A new run (linked to this one) continuing from the checkpoint with the patch; it is
    queued for a worker. The parent run is not changed."""
    refuse_unfit_text(body.model_dump(), ("body",))
    try:  # an ambiguous prefix is the checkpoint_id's fault, not a decision's
        find_checkpoint(service, run_id, body.checkpoint_id)
    except InvalidDecision as exc:
        raise invalid(("body", "checkpoint_id"), str(exc), body.checkpoint_id) from None
    if body.patch:
        _check_patch(RunConfig.model_validate(service.require(run_id).config), body.patch, settings)
    try:
        child = fork_run(service, run_id, checkpoint_id=body.checkpoint_id, patch=body.patch)
    except CheckpointWithoutState as exc:  # the run's first checkpoint: listed, but empty
        raise invalid(("body", "checkpoint_id"), str(exc), body.checkpoint_id) from None
    pool.notify()
    return RunAccepted(
        id=child.id,
        status=child.status,
        run_dir=child.run_dir,
        events_url=f"/runs/{child.id}/events",
    )


def _check_patch(parent: RunConfig, patch: dict[str, Any], settings: Settings) -> None:
    """The patch's config errors and disallowed paths, each at its place in the request
    (`patch.<field>`). What the state at the checkpoint rules out (a method its data cannot
    feed, a path that does not exist) `fork_run` refuses."""
    try:
        patched = apply_patch(parent, patch)
    except ConfigError as exc:
        raise ConfigError(exc.source, [_in_patch(i) for i in exc.issues]) from None
    if any(SECTIONS[name].paths for name in patch if name in SECTIONS):
        check_paths(patched, settings, under="patch")


def _in_patch(issue: ConfigIssue) -> ConfigIssue:
    return ConfigIssue(f"patch.{issue.path}" if issue.path else "patch", issue.message, issue.hint)
