"""The dashboard's templates and the filters they format values with."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from llmfinetune_agent.cli.readable import fmt_change, fmt_duration, fmt_memory, fmt_number

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# Nothing a page loads comes from elsewhere, no inline script runs, no other site frames it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def since(moment: Any) -> str:
    """'3 min' from an ISO time or datetime until now."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return fmt_duration((datetime.now(timezone.utc) - moment).total_seconds())


def clock(moment: Any) -> str:
    """'2026-12-06 10:39:58' from an ISO time (UTC)."""
    try:
        return datetime.fromisoformat(str(moment)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(moment)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def epoch_ms(moment: Any) -> int:
    """Milliseconds since 1970 (what a browser's `Date.now()` counts)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def fact(value: Any, key: str = "") -> str:
    """A summary value for reading: durations for `*_seconds`, sizes for `*_gb`."""
    if key.endswith("seconds"):
        return fmt_duration(value)
    if key.endswith("_gb"):
        return fmt_memory(value)
    return fmt_number(value)


def label(key: str) -> str:
    """'train_examples' -> 'train examples'."""
    return str(key).replace("_", " ")


TEMPLATES.env.filters.update(
    num=fmt_number,
    change=fmt_change,
    duration=fmt_duration,
    memory=fmt_memory,
    since=since,
    pretty=pretty_json,
    epoch_ms=epoch_ms,
    label=label,
    fact=fact,
    clock=clock,
)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the session's CSRF token (for forms and htmx) in its context."""
    session = context.pop("session", None)
    context.setdefault("csrf_token", session.csrf_token if session else "")
    context.setdefault("signed_in", session is not None)
    context.setdefault("open_dashboard", request.app.state.ui_signer.open)
    response = TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
