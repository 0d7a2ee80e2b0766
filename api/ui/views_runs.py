"""Dashboard pages for runs: the list (with filters), starting a run, one run in detail."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile  # what request.form() holds

from api.body_limits import loads_typed_json
from api.confinement import PathNotAllowed, confine_config
from api.deps import BackendDep, ServiceDep, SettingsDep
from api.ui.config_form import (
    FormErrors,
    build_sections,
    place_errors,
    read_form,
    training_section,
)
from api.ui.deps import SessionDep, WriteDep
from api.ui.rendering import page
from api.ui.run_view import run_context
from llmfinetune_agent.config import ConfigError, parse_run_config
from llmfinetune_agent.execution import RunError
from llmfinetune_agent.run_store import RUN_STATUSES

router = APIRouter(prefix="/ui")

LISTED = 500  # runs read for one listing (filters apply to these)
UPLOAD_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class RunFilters:
    """The runs list's filters (query parameters)."""

    status: str | None = None
    method: str | None = None
    q: str | None = None


async def run_filters(
    status: Annotated[str | None, Query(max_length=40)] = None,
    method: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> RunFilters:
    return RunFilters(status, method, q)


FiltersDep = Annotated[RunFilters, Depends(run_filters)]


@router.get("", response_class=HTMLResponse)
def runs_page(
    request: Request, session: SessionDep, service: ServiceDep, filters: FiltersDep
) -> HTMLResponse:
    """Runs newest first: status, the gate waiting and for how long, age, method, model."""
    context = _runs_context(service, filters)
    return page(request, "runs.html", session=session, nav="runs", **context)


@router.get("/runs/table", response_class=HTMLResponse)
def runs_table(
    request: Request, session: SessionDep, service: ServiceDep, filters: FiltersDep
) -> HTMLResponse:
    """The runs table alone (filters applied; it refreshes itself every few seconds)."""
    return page(request, "_runs_table.html", session=session, **_runs_context(service, filters))


def _runs_context(service, filters: RunFilters) -> dict:
    status = filters.status if filters.status in RUN_STATUSES else None
    method, q = filters.method, filters.q
    records, _ = service.store.list_runs(status=status, limit=LISTED)
    dead = (
        set(service.store.recover_orphans())
        if any(r.status == "running" for r in records)
        else set()
    )
    rows = [_row(r, dead) for r in records]
    methods = sorted({r["method"] for r in rows})
    if method:
        rows = [r for r in rows if r["method"] == method]
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r["name"].lower() or needle in r["model"].lower()]
    filters = {"status": status, "method": method, "q": q}
    query = urlencode({k: v for k, v in filters.items() if v})
    return {
        "runs": rows,
        "count": len(rows),
        "filters": filters,
        "query": query,
        "statuses": RUN_STATUSES,
        "methods": methods or ["sft"],
    }


def _row(record: Any, dead: set[str]) -> dict[str, Any]:
    pending = record.pending_interrupt if record.status == "awaiting_approval" else None
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "interrupted": record.id in dead,
        "gate": (pending or {}).get("kind"),
        "gate_id": (pending or {}).get("id"),
        "waiting_since": record.updated_at,
        "created_at": record.created_at,
        "method": (record.config.get("training") or {}).get("method", "sft"),
        "model": (record.config.get("model") or {}).get("name_or_path", ""),
    }


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Start a run from a config file or from the schema-driven form."""
    return page(request, "run_new.html", session=session, nav="runs", sections=build_sections())


@router.get("/runs/new/training", response_class=HTMLResponse)
def training_fields(
    request: Request,
    session: SessionDep,
    method: Annotated[str, Query(alias="training.method", max_length=40)] = "sft",
) -> HTMLResponse:
    """The training fieldset for another method (swapped into the form)."""
    section = training_section({}, method)
    return page(request, "_form_section.html", session=session, section=section)


@router.post("/runs", response_class=HTMLResponse)
async def start_from_form(
    request: Request, session: WriteDep, settings: SettingsDep, backend: BackendDep
) -> HTMLResponse:
    """Start a run from the form; errors are shown next to their fields."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    method = form.get("training.method")
    try:
        config = read_form(form, method)
    except FormErrors as exc:
        return _form_again(request, session, form, method, exc.errors)
    try:
        record = await run_in_threadpool(_submit, config, settings, backend, "form")
    except (ConfigError, PathNotAllowed) as exc:
        issues = {i.path: i.message + (f" ({i.hint})" if i.hint else "") for i in exc.issues}
        return _form_again(request, session, config, method, issues)
    return RedirectResponse(f"/ui/runs/{record.id}", status_code=303)


def _form_again(request, session, values: dict, method, issues: dict[str, str]) -> HTMLResponse:
    nested = values if all("." not in k for k in values) else _nest(values)
    sections = build_sections(nested, method)
    unplaced = place_errors(sections, issues)
    errors = unplaced or ["see the fields marked below"]
    return _refused(request, session, sections=sections, form_errors=errors)


def _refused(request, session, **errors_and_sections) -> HTMLResponse:
    """The new-run page again (422), with what was wrong."""
    errors_and_sections.setdefault("sections", build_sections())
    return page(
        request, "run_new.html", status_code=422, session=session, nav="runs", **errors_and_sections
    )


def _nest(form: dict[str, str]) -> dict[str, Any]:
    """Dotted form values as a nested dict (the text as typed, to show it again)."""
    nested: dict[str, Any] = {}
    for key, value in form.items():
        *parents, last = key.split(".")
        node: Any = nested
        for part in parents:  # 'a.b' typed beside 'a.b.c.d': the text one wins, the other drops
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[last] = _json_or_text(value)
    return nested


def _json_or_text(value: str) -> Any:
    try:
        return loads_typed_json(value)
    except ValueError:
        return value


@router.post("/runs/upload", response_class=HTMLResponse)
async def start_from_file(
    request: Request,
    session: WriteDep,
    settings: SettingsDep,
    backend: BackendDep,
) -> HTMLResponse:
    """Start a run from an uploaded config file (JSON); errors name the file and field."""
    upload = (await request.form()).get("config_file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _file_errors(request, session, ["choose a config file (JSON) to upload"])
    raw = await upload.read(UPLOAD_LIMIT + 1)
    if len(raw) > UPLOAD_LIMIT:
        return _file_errors(request, session, [f"{upload.filename} is larger than 1 MB"])
    try:
        config = loads_typed_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        return _file_errors(request, session, [f"{upload.filename} is not JSON{where}: {exc}"])
    try:
        record = await run_in_threadpool(_submit, config, settings, backend, upload.filename)
    except (ConfigError, PathNotAllowed) as exc:
        return _file_errors(request, session, [f"{upload.filename}: {i}" for i in exc.issues])
    return RedirectResponse(f"/ui/runs/{record.id}", status_code=303)


def _file_errors(request, session, errors: list[str]) -> HTMLResponse:
    return _refused(request, session, file_errors=errors)


def _submit(config: dict[str, Any], settings, backend, source: str):
    parsed = parse_run_config(config, source=source)
    return backend.submit(confine_config(parsed, settings))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, session: SessionDep, service: ServiceDep):
    """One run: path through the graph, live progress and chart, decisions, event tail."""
    context = run_context(service, run_id)
    return page(request, "run_detail.html", session=session, nav="runs", **context)


@router.get("/runs/{run_id}/panels", response_class=HTMLResponse)
def run_panels(request: Request, run_id: str, session: SessionDep, service: ServiceDep):
    """The run page's status, gate, path and decisions (fetched again on each state event)."""
    context = run_context(service, run_id)
    return page(request, "_run_panels.html", session=session, oob=True, **context)


@router.post("/runs/{run_id}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request, run_id: str, session: WriteDep, service: ServiceDep, backend: BackendDep
):
    """Cancel the run; the panels show the outcome."""
    with contextlib.suppress(RunError):  # already ended: the panels say how
        backend.cancel(run_id, by="dashboard")
    context = run_context(service, run_id)
    return page(request, "_run_panels.html", session=session, oob=True, **context)
