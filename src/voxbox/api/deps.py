"""Dependencies: the backends, the authenticated user, the client's address and origin.

All are ``async def``: FastAPI would run plain functions in a worker thread, per request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from voxbox.config import Settings
from voxbox.core import sessions
from voxbox.core.backends import Backends
from voxbox.core.errors import Unauthorized
from voxbox.core.principal import Principal
from voxbox.core.sessions import Credentials

SESSION_COOKIE = "voxbox_session"
SESSION_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers keep a cookie for

_bearer = HTTPBearer(auto_error=False, description="A token from /auth/register or /auth/login")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The web app's session (login with ?session=cookie); unsafe methods also need "
    "a same-origin Origin header",
)


async def backends(request: Request) -> Backends:
    b: Backends = request.app.state.backends
    return b


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() if value else None


def own_origin(conn: HTTPConnection, settings: Settings) -> str | None:
    """The server's origin as this request reached it: its scheme and ``Host``, or, behind a
    trusted proxy (``trust_forwarded_for``), ``X-Forwarded-Proto`` and ``X-Forwarded-Host``."""
    scheme, host = conn.url.scheme, conn.headers.get("host", "")
    if settings.trust_forwarded_for:
        scheme = _first(conn.headers.get("x-forwarded-proto")) or scheme
        host = _first(conn.headers.get("x-forwarded-host")) or host
    return sessions.make_origin(scheme, host)


def is_https(conn: HTTPConnection, settings: Settings) -> bool:
    origin = own_origin(conn, settings)
    return origin is not None and origin.startswith("https:")


async def credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Credentials:
    """The bearer token if the request has one, else the session cookie."""
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return Credentials(bearer.credentials, from_cookie=False)
    if cookie:
        return Credentials(cookie, from_cookie=True)
    raise Unauthorized("Send 'Authorization: Bearer <token>' (or log in for a session cookie).")


async def optional_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Credentials | None:
    try:
        return await credentials(bearer, cookie)
    except Unauthorized:
        return None


async def current_user(
    request: Request,
    b: Annotated[Backends, Depends(backends)],
    creds: Annotated[Credentials, Depends(credentials)],
) -> Principal:
    return await sessions.authenticate(
        b,
        creds,
        method=request.method,
        origin=request.headers.get("origin"),
        # only a cookie request is checked against our origin (building it is not free)
        own_origin=own_origin(request, b.settings) if creds.from_cookie else None,
    )


async def cookie_session(
    request: Request,
    b: Annotated[Backends, Depends(backends)],
    session: Annotated[
        Literal["cookie"] | None,
        Query(description="`cookie`: also set the web app's HttpOnly session cookie"),
    ] = None,
) -> bool:
    """Whether login/register should set the session cookie. A cookie is only set for a
    request from our own pages (or from no page at all): a foreign Origin is refused, so no
    other site can log a browser into an account of its choosing."""
    if session != "cookie":
        return False
    sessions.check_origin_if_sent(request.headers.get("origin"), own_origin(request, b.settings))
    return True


def set_session_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


async def client_address(request: Request, b: Annotated[Backends, Depends(backends)]) -> str:
    if b.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


B = Annotated[Backends, Depends(backends)]
CurrentUser = Annotated[Principal, Depends(current_user)]
CurrentCredentials = Annotated[Credentials, Depends(credentials)]
CookieSession = Annotated[bool, Depends(cookie_session)]
