"""Signing in to the dashboard with the API key, and out again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.ui.deps import SignerDep, WriteDep
from api.ui.rendering import page
from api.ui.session import COOKIE, CsrfRefused, set_session_cookie

router = APIRouter(prefix="/ui")


def _safe_next(next_url: str | None) -> str:
    """Only a page of the dashboard itself (never another site) to go back to."""
    if next_url and next_url.startswith("/ui") and not next_url.startswith("//"):
        return next_url
    return "/ui"


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, signer: SignerDep, next: Annotated[str | None, Query(max_length=2000)] = None
):
    """The sign-in form; with no API key configured, a session at once."""
    if signer.open:
        response = RedirectResponse(_safe_next(next), status_code=303)
        set_session_cookie(response, request, signer.issue())
        return response
    return page(request, "login.html", next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    signer: SignerDep,
    api_key: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/ui",
):
    """Check the key; a session cookie on success, the form with an error otherwise."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
        raise CsrfRefused(f"a sign-in from {origin} is not accepted")
    if not signer.key_is_right(api_key):
        return page(
            request,
            "login.html",
            status_code=401,
            next_url=_safe_next(next),
            error="Wrong API key.",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, signer.issue())
    return response


@router.post("/logout")
def logout(session: WriteDep) -> RedirectResponse:
    """End the session (the cookie is removed)."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
