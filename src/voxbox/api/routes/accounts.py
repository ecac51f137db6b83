from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from voxbox.api.deps import B, CurrentUser, bearer_token, client_address
from voxbox.api.schemas import AuthOut, InviteOut, LoginIn, RegisterIn
from voxbox.core import accounts
from voxbox.core.views import MeOut, UserOut, me_out, user_out
from voxbox.timeutil import isoformat

router = APIRouter(tags=["accounts"])


@router.post("/auth/register", status_code=201)
async def register(body: RegisterIn, b: B) -> AuthOut:
    user, token = await accounts.register(
        b, body.handle, body.password, body.display_name, body.invite
    )
    return AuthOut(user=user_out(user), token=token)


@router.post("/auth/login")
async def login(body: LoginIn, b: B, address: Annotated[str, Depends(client_address)]) -> AuthOut:
    user, token = await accounts.login(b, body.handle, body.password, address)
    return AuthOut(user=user_out(user), token=token)


@router.post("/auth/logout", status_code=204)
async def logout(
    b: B, _user: CurrentUser, token: Annotated[str, Depends(bearer_token)]
) -> Response:
    await accounts.logout(b, token)
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser) -> MeOut:
    return me_out(user)


@router.get("/users/{handle}")
async def get_user(handle: str, b: B, _user: CurrentUser) -> UserOut:
    return user_out(await accounts.get_user(b, handle))


@router.post("/invites", status_code=201)
async def create_invite(b: B, user: CurrentUser) -> InviteOut:
    invite = await accounts.create_invite(b, user)
    return InviteOut(code=invite.code, expires_at=isoformat(invite.expires_at))
