"""Accepting a gate decision over HTTP before a worker executes it.

The HTTP answer must be final (202, 404, 409 or 422) even when every worker is busy, so the
decision is checked here under the run's claim: `awaiting_approval -> running` by compare-and-
set, then the interrupt and the decision are checked, then the claim is released as `queued`.
Of two racing approvals only one claims the run; the other gets 409. The worker that later
resumes the run re-checks the interrupt under its own claim.
"""

from __future__ import annotations

from typing import Any

from api.confinement import check_paths
from api.workers import DECISION_EVENT, all_events
from llmfinetune_agent.agents.gates import (
    DecisionError,
    validate_decision,
    validate_gate_decision,
)
from llmfinetune_agent.config import ConfigError, ConfigIssue, RunConfig, apply_patch
from llmfinetune_agent.run_store import make_owner
from llmfinetune_agent.runner import (
    InterruptNotPending,
    InvalidDecision,
    RunBusy,
    RunNotFound,
    RunService,
)
from llmfinetune_agent.settings import Settings


class InterruptUnknown(RunNotFound):
    """The run never raised an interrupt with that id."""


def known_interrupt_ids(service: RunService, run_id: str) -> set[str]:
    """Ids of every interrupt the run has raised (from its event log) or has pending."""
    ids = {i["id"] for i in service.pending_interrupts(run_id)}
    ids.update(e.payload.get("id") for e in all_events(service, run_id) if e.kind == "interrupt")
    return ids


def accept_decision(
    service: RunService,
    settings: Settings,
    *,
    run_id: str,
    interrupt_id: str,
    decision: dict[str, Any],
) -> None:
    """Check a decision for a pending interrupt and mark the run `queued` to continue with it."""
    run = service.require(run_id)
    if interrupt_id not in known_interrupt_ids(service, run_id):
        raise InterruptUnknown(f"run {run_id} has no interrupt '{interrupt_id}'")
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
        check_decision(decision, config, settings)
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


def check_decision(decision: dict[str, Any], config: dict[str, Any], settings: Settings) -> None:
    """`InvalidDecision` for a bad decision or edit; `PathNotAllowed` for an edit reading files
    outside the data roots; `ConfigError` (issues at `edits.<field>`) for an edit that makes
    the config invalid."""
    _check_edits(decision, config)
    try:
        value = validate_decision(decision, config)
    except DecisionError as exc:
        raise InvalidDecision(str(exc)) from None
    if value["edits"]:
        try:
            edited = apply_patch(RunConfig.model_validate(config), value["edits"])
        except ConfigError as exc:  # validate_decision already caught these; keep it total
            raise InvalidDecision(str(exc)) from None
        check_paths(edited, settings)


def _check_edits(decision: dict[str, Any], config: dict[str, Any]) -> None:
    """An edit's config errors, each named by its place in the request: `edits.<field>`."""
    edits = decision.get("edits")
    if decision.get("decision") != "edit" or not isinstance(edits, dict) or not edits:
        return  # nothing to check here; validate_decision says what is missing
    try:
        apply_patch(RunConfig.model_validate(config), edits)
    except ConfigError as exc:
        issues = [ConfigIssue(_under_edits(i.path), i.message, i.hint) for i in exc.issues]
        raise ConfigError("edit", issues) from None


def _under_edits(path: str) -> str:
    return f"edits.{path}" if path else "edits"
