"""`/runs/{run_id}/interrupts`: the gates waiting for a human, and answering them."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.decisions import check_decision
from api.deps import BackendDep, ServiceDep, SettingsDep
from api.path_strings import refuse_unfit_text
from api.schemas import DecisionAccepted, DecisionIn, InterruptPublic, InterruptsPublic

router = APIRouter(prefix="/runs/{run_id}/interrupts", tags=["interrupts"])


@router.get(
    "",
    response_model=InterruptsPublic,
    responses={404: {"description": "No run with that id."}},
    summary="Pending interrupts",
)
def list_interrupts(run_id: str, service: ServiceDep) -> InterruptsPublic:
    """The gates the run waits at (at most one in practice), with what each asks.

    A gate whose decision was accepted (202) is no longer listed, even before a worker has
    resumed the run with it: the run is then `queued` or `running`, not waiting.
    """
    run = service.require(run_id)
    waiting = run.status == "awaiting_approval"
    pending = [InterruptPublic(**i) for i in service.pending_interrupts(run_id)] if waiting else []
    return InterruptsPublic(data=pending, count=len(pending))


@router.post(
    "/{interrupt_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DecisionAccepted,
    responses={
        404: {"description": "No such run, or the run never raised that interrupt."},
        409: {"description": "The interrupt is no longer pending, or the run is busy."},
        422: {"description": "A bad decision, an edit that is not a valid config, or a NUL byte."},
    },
    summary="Answer an interrupt",
)
def answer_interrupt(
    run_id: str,
    interrupt_id: str,
    decision: DecisionIn,
    settings: SettingsDep,
    backend: BackendDep,
) -> DecisionAccepted:
    """Approve, reject or edit (a config patch). The run continues in a worker."""
    refuse_unfit_text(decision.model_dump(), ("body",))
    backend.decide(
        run_id,
        interrupt_id=interrupt_id,
        decision=decision.model_dump(exclude_none=True),
        check=lambda value, config: check_decision(value, config, settings),
    )
    return DecisionAccepted(run_id=run_id, interrupt_id=interrupt_id, status="queued")
