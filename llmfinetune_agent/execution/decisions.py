"""Accepting a gate decision for a worker to execute later.

The answer to the human must be final (accepted, unknown, no longer pending, or invalid) even
when every worker is busy, so the decision is checked here under the run's claim:
`awaiting_approval -> running` by compare-and-set, then the interrupt and the decision are
checked, then the claim is released as `queued` with the decision in the run's log. Of two
racing approvals only one claims the run; the other gets `RunBusy`. The worker that later
resumes the run re-checks the interrupt under its own claim.

The graph writes a decision into the run's decision log only when its gate resumes with it, so
a decision accepted for a run that is then cancelled (or fails) before a worker resumes it would
be missing there; `unapplied_decision` reads it back from the run's log for `describe_run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmfinetune_agent.agents.gates import DecisionError, validate_gate_decision
from llmfinetune_agent.execution.cancel import cancel_now
from llmfinetune_agent.execution.errors import (
    InterruptNotPending,
    InvalidDecision,
    RunBusy,
    RunNotFound,
)
from llmfinetune_agent.execution.run_log import CANCEL_EVENT, DECISION_EVENT, all_events
from llmfinetune_agent.execution.service import RunService
from llmfinetune_agent.run_store import RunRecord, make_owner

DecisionCheck = Callable[[dict[str, Any], dict[str, Any]], None]
"""The caller's own check of `(decision, run config)`, e.g. the API's path confinement."""


NOT_APPLIED = {
    "cancelled": "accepted, not applied: the run was cancelled",
    "failed": "accepted, not applied: the run failed",
}
"""Why an accepted decision never reached its gate, by how the run ended."""
NOT_APPLIED_YET = "accepted, not applied yet: the run continues with it"


class InterruptUnknown(RunNotFound):
    """The run never raised an interrupt with that id."""


def known_interrupt_ids(service: RunService, run_id: str) -> set[str]:
    """Ids of every interrupt the run has raised (from its event log) or has pending."""
    ids = {i["id"] for i in service.pending_interrupts(run_id)}
    events = all_events(service.store, run_id)
    ids.update(e.payload.get("id") for e in events if e.kind == "interrupt")
    return ids


def accept_decision(
    service: RunService,
    *,
    run_id: str,
    interrupt_id: str,
    decision: dict[str, Any],
    check: DecisionCheck | None = None,
) -> None:
    """Check a decision for a pending interrupt and mark the run `queued` to continue with it."""
    run = service.require(run_id)
    if interrupt_id not in known_interrupt_ids(service, run_id):
        raise InterruptUnknown(f"run {run_id} has no interrupt '{interrupt_id}'")
    # A cancel asked while this claim is held cannot claim the run and only leaves a request
    # in its log, which the worker that later takes the run does not count (its watch reads
    # requests made after it began): honoured below, once the run is released.
    asked_before = service.store.latest_event(run_id=run_id, kind=CANCEL_EVENT)
    owner = make_owner()
    if not service.store.claim_run(run_id=run_id, owner=owner, allowed_from=("awaiting_approval",)):
        raise RunBusy(
            f"interrupt '{interrupt_id}' of run {run_id} is no longer pending "
            f"(the run is {service.require(run_id).status})"
        )
    try:
        pending = {i["id"]: i.get("kind", "") for i in service.pending_interrupts(run_id)}
        if interrupt_id not in pending:
            raise InterruptNotPending(f"interrupt '{interrupt_id}' was already answered")
        values = service.state_values(run_id)
        config = values.get("config") or run.config
        if check is not None:
            check(decision, config)
        try:  # what the gate itself needs (approve_fixes: something to apply)
            validate_gate_decision(decision, {**values, "config": config}, pending[interrupt_id])
        except DecisionError as exc:
            raise InvalidDecision(str(exc)) from None
    except BaseException:
        service.store.release_run(run_id=run_id, owner=owner, status=run.status)
        raise
    service.store.append_event(
        run_id=run_id,
        kind=DECISION_EVENT,
        payload={"interrupt_id": interrupt_id, "decision": decision},
    )
    service.store.release_run(run_id=run_id, owner=owner, status="queued", pending_interrupt=None)
    asked = service.store.latest_event(
        run_id=run_id, kind=CANCEL_EVENT, after_seq=asked_before.seq if asked_before else 0
    )
    if asked is not None:
        cancel_now(service.store, run_id, by=asked.payload.get("by") or "request")


def accepted_decision(service: RunService, run_id: str, interrupt_id: str) -> dict[str, Any] | None:
    """The decision accepted for this interrupt, if any (the latest one)."""
    found = None
    for event in all_events(service.store, run_id):
        if event.kind == DECISION_EVENT and event.payload.get("interrupt_id") == interrupt_id:
            found = event.payload.get("decision")
    return found


def wait_again(service: RunService, run_id: str, interrupt: dict[str, Any]) -> bool:
    """Put a run back to `awaiting_approval` at `interrupt` (a crash left it `running` or a
    worker found no decision to go on with); False when someone else holds its claim."""
    owner = make_owner()
    if not service.store.claim_run(run_id=run_id, owner=owner):
        return False
    service.store.release_run(
        run_id=run_id, owner=owner, status="awaiting_approval", pending_interrupt=interrupt
    )
    return True


def reopen_gate(service: RunService, run: RunRecord) -> tuple[RunRecord, dict[str, Any] | None]:
    """A run stopped at a gate without waiting there: a process killed as it applied a
    decision (`running`, its claim dead), or a decision accepted with no worker left to carry
    it out (`queued`). Returns the run and the accepted decision to resume with, if any;
    without one the run waits at its gate again, so a decision can be given. Any other run is
    returned as it is. (Without this, `resume` said "give a decision" and `resume --approve`
    said "not waiting at a gate": only a worker's dispatcher could free such a run.)"""
    stopped = run.status == "queued" or (
        run.status == "running" and service.store.is_interrupted(run)
    )
    pending = service.pending_interrupts(run.id) if stopped else []
    if not pending:
        return run, None
    accepted = accepted_decision(service, run.id, pending[0]["id"])
    if accepted is None and wait_again(service, run.id, pending[0]):
        return service.require(run.id), None
    return run, accepted


def unapplied_decision(
    service: RunService, run: RunRecord, pending: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, Any] | None:
    """The decision log entry of a decision accepted for the gate still pending in the
    checkpoint (`pending`, the snapshot's interrupts; `values`, its state), marked
    `applied: false` with why; None when there is none."""
    if not pending or run.status == "awaiting_approval":  # a waiting gate has no answer yet
        return None
    event = service.store.latest_event(run_id=run.id, kind=DECISION_EVENT)
    if event is None or event.payload.get("interrupt_id") != pending[0]["id"]:
        return None
    decision = event.payload.get("decision") or {}
    extra = {k: decision[k] for k in ("select", "route") if k in decision}
    return {  # the fields of `improvement.decision_record`, at the time it was accepted
        "gate": pending[0].get("kind"),
        "decision": decision.get("decision"),
        "patch": decision.get("edits") if decision.get("decision") == "edit" else None,
        "comment": decision.get("comment") or "",
        "time": event.time.isoformat(timespec="seconds"),
        "iteration": values.get("iteration", 1),
        **extra,
        "applied": False,
        "note": NOT_APPLIED.get(run.status, NOT_APPLIED_YET),
    }
