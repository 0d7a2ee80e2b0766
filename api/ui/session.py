"""The dashboard's login: the API key once, then an HTTP-only session cookie; CSRF tokens.

A browser's `EventSource` cannot send an `Authorization` header, so the dashboard does not use
the API's bearer key: `POST /ui/login` checks the key and sets a signed cookie (HttpOnly,
SameSite=Strict, Path=/ui, Secure over HTTPS) that lives `SESSION_SECONDS`. Without an API key
configured the dashboard is open like the API: the first visit gets a session without asking.

Every state-changing request (`POST`) must carry the session's CSRF token (`X-CSRF-Token`
header, as htmx sends it, or a `csrf_token` form field) and, when the browser says where it
comes from (`Origin`), come from this server. The token is an HMAC of the session, so nothing
is stored server-side; sessions signed with the API key survive a restart and end when the key
changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from llmfinetune_agent.settings import Settings

COOKIE = "fa_session"
SESSION_SECONDS = 12 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session: a page redirects to the login page, htmx gets `HX-Redirect`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """A state-changing request without this session's CSRF token, or from another origin."""


@dataclass(frozen=True)
class UiSession:
    """A signed-in browser: its cookie value and the CSRF token that goes with it."""

    cookie: str
    csrf_token: str


class SessionSigner:
    """Issues and checks session cookies and their CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        self.api_key = settings.api_key
        base = self.api_key.encode() if self.api_key else secrets.token_bytes(32)
        self._secret = hmac.new(base, b"finetune-agent dashboard session", hashlib.sha256).digest()

    @property
    def open(self) -> bool:
        """No API key configured: anyone who reaches the server may use the dashboard."""
        return self.api_key is None

    def key_is_right(self, given: str) -> bool:
        """The key typed at the login page (always right when none is configured)."""
        if self.api_key is None:
            return True
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def issue(self) -> str:
        """A new cookie value: `issued.nonce.signature`."""
        body = f"{int(time.time())}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def check(self, cookie: str | None) -> UiSession | None:
        """The session of a cookie that is ours and not expired, else None."""
        if not cookie or cookie.count(".") != 2:
            return None
        issued, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{issued}.{nonce}")):
            return None
        if not issued.isdigit() or time.time() - int(issued) > SESSION_SECONDS:
            return None
        return UiSession(cookie=cookie, csrf_token=self._sign(f"csrf:{cookie}"))

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()


def set_session_cookie(response, request: Request, value: str) -> None:
    """The session cookie, readable by no script and sent to no other site."""
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def login_url(request: Request) -> str:
    """The login page, coming back to this page (or to the page an htmx request came from)."""
    target = request.headers.get("HX-Current-URL") or str(request.url)
    path = "/" + target.split("://", 1)[-1].split("/", 1)[-1] if "://" in target else target
    return f"/ui/login?next={quote(path if path.startswith('/ui') else '/ui')}"


async def check_csrf(request: Request, session: UiSession) -> None:
    """`CsrfRefused` unless the request carries this session's token and (when the browser
    names it) comes from this server's own origin."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        raise CsrfRefused(f"a request from {origin} may not change anything here")
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        token = (await request.form()).get(CSRF_FIELD)
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf_token):
        raise CsrfRefused("the form is stale or forged (no valid CSRF token): reload the page")
