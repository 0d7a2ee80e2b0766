"""The dashboard's dependencies: the signed-in session, and the CSRF check for writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.ui.session import COOKIE, LoginRequired, SessionSigner, UiSession, check_csrf, login_url


async def get_signer(request: Request) -> SessionSigner:
    return request.app.state.ui_signer


async def ui_session(request: Request) -> UiSession:
    """The browser's session, or `LoginRequired` (a redirect to the login page)."""
    session = request.app.state.ui_signer.check(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired(login_url(request))
    return session


async def ui_write(
    request: Request, session: Annotated[UiSession, Depends(ui_session)]
) -> UiSession:
    """A session allowed to change something: the CSRF token and origin were checked."""
    await check_csrf(request, session)
    return session


SignerDep = Annotated[SessionSigner, Depends(get_signer)]
SessionDep = Annotated[UiSession, Depends(ui_session)]
WriteDep = Annotated[UiSession, Depends(ui_write)]
