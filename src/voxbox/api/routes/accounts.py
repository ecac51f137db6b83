from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from voxbox.api.deps import (
    B,
    CookieSession,
    CurrentCredentials,
    CurrentUser,
    clear_session_cookie,
    client_address,
    is_https,
    set_session_cookie,
)
from voxbox.api.schemas import AuthConfigOut, AuthOut, InviteOut, LoginIn, MeIn, RegisterIn
from voxbox.core import accounts
from voxbox.core.views import MeOut, UserOut, user_out
from voxbox.timeutil import isoformat

router = APIRouter(tags=["accounts"])


@router.get("/auth/config")
async def auth_config(b: B) -> AuthConfigOut:
    """What the sign-in page needs before anyone is logged in (no auth)."""
    return AuthConfigOut(registration=b.settings.registration.value)


@router.post("/auth/register", status_code=201)
async def register(
    body: RegisterIn,
    request: Request,
    response: Response,
    b: B,
    cookie: CookieSession,
    address: Annotated[str, Depends(client_address)],
) -> AuthOut:
    """`?session=cookie` also sets the HttpOnly session cookie `voxbox_session`."""
    user, token = await accounts.register(
        b, body.handle, body.password, body.display_name, body.invite, address
    )
    if cookie:
        set_session_cookie(response, token, secure=is_https(request, b.settings))
    return AuthOut(user=user_out(user), token=token)


@router.post("/auth/login")
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    b: B,
    cookie: CookieSession,
    address: Annotated[str, Depends(client_address)],
) -> AuthOut:
    """`?session=cookie` also sets the HttpOnly session cookie `voxbox_session`."""
    user, token = await accounts.login(b, body.handle, body.password, address)
    if cookie:
        set_session_cookie(response, token, secure=is_https(request, b.settings))
    return AuthOut(user=user_out(user), token=token)


@router.post("/auth/logout", status_code=204)
async def logout(
    request: Request,
    b: B,
    user: CurrentUser,
    credentials: CurrentCredentials,
    all: bool = False,
) -> Response:
    """Revokes the token the request authenticated with (with `all=true`: every token of the
    user, "log out everywhere"); their open WebSockets close with 4401 at once. Clears the
    session cookie if that was it."""
    await accounts.logout(b, user, credentials.token, everywhere=all)
    response = Response(status_code=204)
    if credentials.from_cookie:
        clear_session_cookie(response, secure=is_https(request, b.settings))
    return response


@router.get("/me")
async def me(b: B, user: CurrentUser) -> MeOut:
    """The caller, with their storage: bytes used (media, drafts, backups to download), the
    quota (null: none) and their open uploads against the cap; and whether the voice and audio
    messages they send are transcribed."""
    return await accounts.get_me(b, user)


@router.patch("/me")
async def update_me(body: MeIn, b: B, user: CurrentUser) -> MeOut:
    """Change the caller's choices: `transcribe` (false: the voice and audio messages they send
    from now on get no transcript)."""
    return await accounts.update_me(b, user, transcribe=body.transcribe)


@router.get("/users/{handle}")
async def get_user(handle: str, b: B, _user: CurrentUser) -> UserOut:
    return user_out(await accounts.get_user(b, handle))


@router.post("/invites", status_code=201)
async def create_invite(b: B, user: CurrentUser) -> InviteOut:
    invite = await accounts.create_invite(b, user)
    return InviteOut(code=invite.code, expires_at=isoformat(invite.expires_at))
