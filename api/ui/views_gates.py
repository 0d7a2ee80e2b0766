"""The approvals inbox: every gate waiting across runs, answered in at most two clicks or one
key. A decision goes through the API's own path (`backend.decide` with `check_decision`): the
interrupt must be pending, the run is claimed (a second answer is refused), and an edit is a
config patch validated before it is accepted; errors are shown on the gate's card.

Gates are shown from their generic payload (kind, message, summary, details, options), so a
new gate kind needs no code here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.body_limits import loads_typed_json
from api.confinement import PathNotAllowed
from api.decisions import check_decision
from api.deps import BackendDep, ServiceDep, SettingsDep
from api.path_strings import text_problems
from api.ui.deps import SessionDep, WriteDep
from api.ui.rendering import page
from api.ui.run_view import GateItem
from llmfinetune_agent.agents.gates import DecisionError, validate_gate_decision
from llmfinetune_agent.config import ConfigError
from llmfinetune_agent.execution import RunError

router = APIRouter(prefix="/ui")

WAITING_LISTED = 200
OUTCOMES = {
    "approve": "Approved — the run continues (queued for a worker).",
    "edit": "Edit accepted — the run continues with the patched config.",
    "reject": "Rejected — the run goes on as the gate says (it ends, or goes to the debugger).",
}


def waiting_gates(service, *, skip: frozenset[str] = frozenset()) -> list[GateItem]:
    """Pending gates of every waiting run, the most recently reached first (gates in `skip`
    are listed from the run store alone: only their ids are needed)."""
    runs, _ = service.store.run_summaries(status="awaiting_approval", limit=WAITING_LISTED)
    items = [
        GateItem(_in_order(service, r, skip), r, r["updated_at"])
        for r in runs
        if r["pending_interrupt"]
    ]
    return sorted(items, key=lambda i: i.since, reverse=True)


def _in_order(service, run: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    """The gate's payload from the graph's checkpoint, whose summary keeps the gate's order
    (the run store's copy is canonical JSON, keys sorted)."""
    stored = run["pending_interrupt"]
    if stored["id"] in skip:
        return stored
    pending = {i["id"]: i for i in service.pending_interrupts(run["id"])}
    return pending.get(stored["id"], stored)


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, service: ServiceDep) -> HTMLResponse:
    """Every gate waiting, newest first; new ones appear by themselves."""
    gates = waiting_gates(service)
    known = [i.gate["id"] for i in gates]
    return page(request, "inbox.html", session=session, nav="inbox", gates=gates, known=known)


@router.get("/inbox/poll", response_class=HTMLResponse)
def inbox_poll(
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    known: Annotated[str, Query(max_length=20_000)] = "",
) -> HTMLResponse:
    """Cards of gates that appeared since, and removal of the ones no longer waiting."""
    shown = {k for k in known.split(",") if k}
    gates = waiting_gates(service, skip=frozenset(shown))
    now = {i.gate["id"] for i in gates}
    fresh = [i for i in gates if i.gate["id"] not in shown]
    return page(
        request,
        "_inbox_poll.html",
        session=session,
        gates=fresh,
        gone_ids=sorted(shown - now),
        known=[i.gate["id"] for i in gates],
        oob=True,
    )


@router.post("/runs/{run_id}/gates/{interrupt_id}", response_class=HTMLResponse)
async def decide(
    request: Request,
    run_id: str,
    interrupt_id: str,
    session: WriteDep,
    service: ServiceDep,
    settings: SettingsDep,
    backend: BackendDep,
    decision: Annotated[str, Form(max_length=20)],
    comment: Annotated[str, Form(max_length=10_000)] = "",
    edits: Annotated[str, Form(max_length=100_000)] = "",
) -> HTMLResponse:
    """Answer a gate; the card comes back saying what happened (or what was wrong)."""
    item = await run_in_threadpool(_gate_item, service, run_id, interrupt_id)
    item.comment, item.edits = comment, edits
    value: dict[str, Any] = {"decision": decision, "comment": comment}
    if decision == "edit":
        patch, errors = parse_patch(edits)
        if errors:
            item.edit_errors = errors
            return page(request, "_gate.html", session=session, item=item)
        value["edits"] = patch
    # What the REST route refuses (a NUL, say: PostgreSQL cannot store it), the form does too.
    for where, problem in text_problems({"comment": comment, "edits": value.get("edits")}):
        item.outcome, item.outcome_error = f"{'.'.join(map(str, where))}: {problem}", True
        return page(request, "_gate.html", session=session, item=item)

    def accept() -> None:
        backend.decide(
            run_id,
            interrupt_id=interrupt_id,
            decision=value,
            check=lambda v, config: check_decision(v, config, settings),
        )

    try:
        await run_in_threadpool(accept)
    except (ConfigError, PathNotAllowed) as exc:
        item.edit_errors = [str(i) for i in exc.issues]
    except RunError as exc:
        if decision == "edit" and exc.code == "invalid":
            item.edit_errors = [str(exc)]
        else:
            item.outcome, item.outcome_error = str(exc), True
    else:
        item.outcome = OUTCOMES.get(decision, OUTCOMES["approve"])
    return page(request, "_gate.html", session=session, item=item)


@router.post("/runs/{run_id}/gates/{interrupt_id}/check", response_class=HTMLResponse)
def check_edit(
    request: Request,
    run_id: str,
    interrupt_id: str,
    session: WriteDep,
    service: ServiceDep,
    settings: SettingsDep,
    edits: Annotated[str, Form(max_length=100_000)] = "",
) -> HTMLResponse:
    """Validate a config patch as it is typed, before it is sent (nothing is changed)."""
    item = _gate_item(service, run_id, interrupt_id)
    patch, errors = parse_patch(edits)
    if not errors and patch:
        errors = _edit_refusals(service, run_id, item.gate.get("kind", ""), patch, settings)
    item.edit_errors = errors
    if not errors and patch:
        item.edit_ok = "Valid: " + ", ".join(sorted(_leaves(patch))) + " would change."
    return page(request, "_edit_check.html", session=session, item=item)


def _edit_refusals(service, run_id: str, kind: str, patch: dict[str, Any], settings) -> list[str]:
    """Why the decision would refuse this edit (nothing when it would accept it): the API's
    check, then the gate's own against the run's state (a method its prepared data cannot
    feed, a path or model that is not there), as `accept_decision` runs them."""
    decision = {"decision": "edit", "edits": patch}
    values = service.state_values(run_id)
    config = values.get("config") or service.require(run_id).config
    try:
        check_decision(decision, config, settings)
        validate_gate_decision(decision, {**values, "config": config}, kind)
    except (ConfigError, PathNotAllowed) as exc:
        return [str(i) for i in exc.issues]
    except (RunError, DecisionError) as exc:
        return [str(exc)]
    return []


def parse_patch(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """A config patch from the edit box, or the errors that say what is wrong with it."""
    if not text.strip():
        return None, ['write a config patch, e.g. {"training": {"learning_rate": 0.001}}']
    try:
        patch = loads_typed_json(text)
    except ValueError as exc:
        return None, [f"not valid JSON: {exc}"]
    if not isinstance(patch, dict) or not patch:
        return None, ['a patch is a JSON object of config sections, e.g. {"training": {...}}']
    return patch, []


def _leaves(patch: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key, value in patch.items():
        path = f"{prefix}{key}"
        names += _leaves(value, path + ".") if isinstance(value, dict) and value else [path]
    return names


def _gate_item(service, run_id: str, interrupt_id: str) -> GateItem:
    """The gate's card data: the pending payload, else the one the event log recorded."""
    record = service.require(run_id)
    run = vars(record)
    pending = {i["id"]: i for i in service.pending_interrupts(run_id)}
    if record.status == "awaiting_approval" and interrupt_id in pending:
        return GateItem(pending[interrupt_id], run, record.updated_at)
    recorded = service.store.list_events(run_id=run_id, limit=100_000)
    for event in reversed(recorded):
        if event.kind == "interrupt" and event.payload.get("id") == interrupt_id:
            return GateItem(event.payload, run, event.time)
    return GateItem({"id": interrupt_id, "kind": "gate", "message": "", "options": []}, run, None)
