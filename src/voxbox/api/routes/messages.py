from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from voxbox.api.deps import B, CurrentUser
from voxbox.api.schemas import (
    EmailIn,
    EmailOut,
    ForwardIn,
    ForwardOut,
    MessagesOut,
    ReadIn,
    SendMessageIn,
    StarredOut,
)
from voxbox.core import mailing, messages, receipts
from voxbox.core.views import MessageOut, MessageReceiptsOut

router = APIRouter(tags=["messages"])
JSON = "application/json"


@router.post(
    "/chats/{chat_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses={200: {"description": "Sent before with this client_id", "model": MessageOut}},
)
async def send_message(chat_id: str, body: SendMessageIn, b: B, user: CurrentUser) -> Response:
    """The hot path: the view is encoded once, here, not validated again by the framework."""
    message, created = await messages.send_message(
        b,
        user,
        chat_id,
        client_id=body.client_id,
        kind=body.kind,
        text=body.text,
        reply_to=body.reply_to,
        view_once=body.view_once,
        media_id=body.media_id,
        upload_id=body.upload_id,
    )
    return Response(message.model_dump_json(), status_code=201 if created else 200, media_type=JSON)


@router.get("/chats/{chat_id}/messages")
async def list_messages(
    chat_id: str,
    b: B,
    user: CurrentUser,
    before: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1)] = 50,  # at most limits.page_max (in the schema too)
) -> MessagesOut:
    page, has_more = await messages.list_messages(
        b, user, chat_id, before=before, after=after, limit=limit
    )
    return MessagesOut(messages=page, has_more=has_more)


@router.get("/messages/{message_id}")
async def get_message(message_id: str, b: B, user: CurrentUser) -> MessageOut:
    return await messages.get_message(b, user, message_id)


@router.delete("/messages/{message_id}", status_code=204)
async def delete_message(
    message_id: str, b: B, user: CurrentUser, scope: Literal["me", "everyone"] = "me"
) -> Response:
    await messages.delete_message(b, user, message_id, scope)
    return Response(status_code=204)


@router.post("/messages/{message_id}/email", status_code=202)
async def email_message(message_id: str, body: EmailIn, b: B, user: CurrentUser) -> EmailOut:
    """Email the voice or audio message (Ogg/Opus or the audio file, plus an MP3 copy) with
    its sender, date, length and the note. Sent before answering: 502 if the mail server
    refuses it, 503 when email is off (no `VOXBOX_SMTP__HOST`)."""
    return EmailOut(to=await mailing.email_message(b, user, message_id, body.to, body.note))


@router.post("/messages/{message_id}/forward", status_code=201)
async def forward_message(message_id: str, body: ForwardIn, b: B, user: CurrentUser) -> ForwardOut:
    return ForwardOut(messages=await messages.forward_message(b, user, message_id, body.chat_ids))


@router.put("/messages/{message_id}/star", status_code=204)
async def star(message_id: str, b: B, user: CurrentUser) -> Response:
    await messages.star(b, user, message_id, True)
    return Response(status_code=204)


@router.delete("/messages/{message_id}/star", status_code=204)
async def unstar(message_id: str, b: B, user: CurrentUser) -> Response:
    await messages.star(b, user, message_id, False)
    return Response(status_code=204)


@router.get("/starred")
async def starred(b: B, user: CurrentUser) -> StarredOut:
    return StarredOut(messages=await messages.starred(b, user))


@router.post("/chats/{chat_id}/read", status_code=204)
async def mark_read(chat_id: str, body: ReadIn, b: B, user: CurrentUser) -> Response:
    await receipts.mark_read(b, user, chat_id, body.up_to)
    return Response(status_code=204)


@router.post("/messages/{message_id}/played", status_code=204)
async def mark_played(message_id: str, b: B, user: CurrentUser) -> Response:
    await receipts.mark_played(b, user, message_id)
    return Response(status_code=204)


@router.get(
    "/messages/{message_id}/receipts",
    responses={403: {"description": "Only the sender sees a message's receipts"}},
)
async def message_receipts(message_id: str, b: B, user: CurrentUser) -> MessageReceiptsOut:
    """The sender's "Message info": each member it was sent to, with when it was delivered to,
    read and played by them (`null`: not yet)."""
    return await receipts.message_receipts(b, user, message_id)
