from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from voxbox.api.content import content_disposition
from voxbox.api.deps import B, CurrentUser
from voxbox.api.schemas import AddMemberIn, ChatsOut, DirectChatIn, GroupChatIn
from voxbox.core import chats
from voxbox.core import export as exports
from voxbox.core.views import ChatOut

router = APIRouter(tags=["chats"])

NewChat = Annotated[DirectChatIn | GroupChatIn, Field(discriminator="kind")]


@router.get("/chats")
async def list_chats(b: B, user: CurrentUser) -> ChatsOut:
    return ChatsOut(chats=await chats.list_chats(b, user))


@router.post(
    "/chats",
    status_code=201,
    responses={200: {"description": "The existing direct chat", "model": ChatOut}},
)
async def create_chat(
    body: Annotated[NewChat, Body()], b: B, user: CurrentUser, response: Response
) -> ChatOut:
    if isinstance(body, DirectChatIn):
        chat, created = await chats.create_direct(b, user, body.handle)
        if not created:
            response.status_code = 200
        return chat
    return await chats.create_group(b, user, body.title, body.handles)


@router.get("/chats/{chat_id}")
async def get_chat(chat_id: str, b: B, user: CurrentUser) -> ChatOut:
    return await chats.get_chat(b, user, chat_id)


@router.post("/chats/{chat_id}/members")
async def add_member(chat_id: str, body: AddMemberIn, b: B, user: CurrentUser) -> ChatOut:
    return await chats.add_member(b, user, chat_id, body.handle)


@router.delete("/chats/{chat_id}/members/{handle}", status_code=204)
async def remove_member(chat_id: str, handle: str, b: B, user: CurrentUser) -> Response:
    await chats.remove_member(b, user, chat_id, handle)
    return Response(status_code=204)


@router.get(
    "/chats/{chat_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The chat as a zip"}},
)
async def export_chat(
    chat_id: str, b: B, user: CurrentUser, media: bool = True
) -> StreamingResponse:
    """The chat as a zip, streamed: chat.txt (WhatsApp's format), messages.json, media/ (with
    `media=true`) and chat.html, which plays the voice notes offline."""
    export = await exports.open_export(b, user, chat_id, media=media)
    return StreamingResponse(
        export.chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(export.filename, inline=False),
            "Cache-Control": "no-store",
        },
    )
