"""Who a request is: a bearer token, or the web app's session cookie with CSRF protection.

A cookie is sent by the browser on any site's request to us, so a request authenticated by
the cookie must prove it comes from our own pages: a state-changing request (any method but
GET, HEAD, OPTIONS) needs an ``Origin`` equal to the server's own origin. A bearer token is never
sent by a browser on its own, so it needs no such proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from voxbox.core import accounts
from voxbox.core.backends import Backends
from voxbox.core.errors import Forbidden, Unauthorized
from voxbox.core.principal import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


@dataclass(frozen=True)
class Credentials:
    token: str
    from_cookie: bool


def make_origin(scheme: str, host: str) -> str | None:
    """``scheme://host[:port]``, normalized (lower case, default port dropped); None if either
    part is unusable. ``ws``/``wss`` count as ``http``/``https``."""
    scheme = _SCHEMES.get(scheme.strip().lower(), "")
    host = host.strip().lower()
    if not scheme or not host or any(c in host for c in "/?#@\\ "):
        return None
    try:
        parts = urlsplit(f"{scheme}://{host}")
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None:
        return None
    hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{hostname}"
    return f"{scheme}://{hostname}:{port}"


def normalize_origin(origin: str) -> str | None:
    """An ``Origin`` header as ``make_origin`` would write it; None for ``null`` or junk."""
    scheme, sep, rest = origin.strip().partition("://")
    if not sep or "/" in rest:
        return None
    return make_origin(scheme, rest)


def check_same_origin(origin: str | None, own_origin: str | None) -> None:
    """Refuse a request whose ``Origin`` is missing or is not the server's own origin."""
    if origin is None:
        raise Forbidden(
            "Cross-origin request refused: a request authenticated by the session cookie "
            "needs an Origin header naming this server."
        )
    if own_origin is None or normalize_origin(origin) != own_origin:
        raise Forbidden(
            f"Cross-origin request refused: Origin {origin[:100]!r} is not this server's."
        )


def check_origin_if_sent(origin: str | None, own_origin: str | None) -> None:
    """For requests a browser may make as a plain navigation or form post (login that sets the
    cookie, the share target): an ``Origin`` that is sent must be ours."""
    if origin is not None:
        check_same_origin(origin, own_origin)


def check_csrf(credentials: Credentials, method: str, origin: str | None, own: str | None) -> None:
    """The CSRF rule: a cookie-authenticated, state-changing request must be same-origin."""
    if credentials.from_cookie and method.upper() not in SAFE_METHODS:
        check_same_origin(origin, own)


async def authenticate(
    b: Backends,
    credentials: Credentials,
    *,
    method: str,
    origin: str | None,
    own_origin: str | None,
) -> Principal:
    """The user of a request's credentials; Forbidden for a cross-origin cookie request that
    changes state (checked before the token), Unauthorized for a bad token."""
    check_csrf(credentials, method, origin, own_origin)
    return await accounts.authenticate(b, credentials.token)


async def authenticate_form_post(b: Backends, credentials: Credentials | None) -> Principal | None:
    """The user of a form post a browser may make as a navigation (the Web Share Target), or
    None when not logged in. Any origin may post (UI.md: "the same POST works from a plain HTML
    form"): it only stages the files, and nothing is sent until the user picks chats in the
    app. ``SameSite=Lax`` keeps the cookie off other sites' posts, which then lead to login."""
    if credentials is None:
        return None
    try:
        return await accounts.authenticate(b, credentials.token)
    except Unauthorized:
        return None
