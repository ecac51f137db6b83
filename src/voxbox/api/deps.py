"""Dependencies: the backends, the authenticated user, the client's address.

All are ``async def``: FastAPI would run plain functions in a worker thread, per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from voxbox.core import accounts
from voxbox.core.backends import Backends
from voxbox.core.errors import Unauthorized
from voxbox.db.models import User

_bearer = HTTPBearer(auto_error=False, description="A token from /auth/register or /auth/login")


async def backends(request: Request) -> Backends:
    b: Backends = request.app.state.backends
    return b


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    return credentials.credentials


async def current_user(
    b: Annotated[Backends, Depends(backends)], token: Annotated[str, Depends(bearer_token)]
) -> User:
    return await accounts.authenticate(b, token)


async def client_address(request: Request, b: Annotated[Backends, Depends(backends)]) -> str:
    if b.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


B = Annotated[Backends, Depends(backends)]
CurrentUser = Annotated[User, Depends(current_user)]
