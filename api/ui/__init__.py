"""The web dashboard at `/ui`: runs, approvals, live progress, data, evaluation and models.

Server-rendered (Jinja2 templates in `templates/`) with htmx 2 and its SSE extension for the
live parts and uPlot for the charts; their files ship in `static/` with their licenses (no
CDN, no Node at run time). Signing in with the API key gives an HTTP-only session cookie;
every write carries a CSRF token. Without an API key the dashboard is open like the API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.ui import live, views_gates, views_login, views_models, views_results, views_runs
from api.ui.rendering import page
from api.ui.session import CsrfRefused, LoginRequired, SessionSigner
from llmfinetune_agent.settings import Settings

STATIC = Path(__file__).parent / "static"


def add_dashboard(app: FastAPI, settings: Settings) -> None:
    """Serve the dashboard under `/ui` (and its files under `/ui/static`)."""
    app.state.ui_signer = SessionSigner(settings)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for module in (views_login, views_runs, views_gates, views_results, views_models, live):
        app.include_router(module.router, include_in_schema=False)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": exc.next_url})
    if "text/event-stream" in request.headers.get("accept", ""):
        return JSONResponse({"detail": "sign in at /ui/login"}, status_code=401)
    return RedirectResponse(exc.next_url, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
    return page(
        request, "message.html", status_code=403, title="Refused", message=str(exc), is_error=True
    )


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """An error as a page of the dashboard (a missing run, a run in the wrong state)."""
    title = {404: "Not found", 409: "Not now"}.get(status_code, "Something is wrong")
    return page(
        request,
        "message.html",
        status_code=status_code,
        title=title,
        message=message,
        is_error=True,
    )
