"""What clients see: typed schemas of users, chats and messages, and their loaders.

The same schemas are API response bodies and event payloads; ORM rows never leave core.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core import mediatypes
from voxbox.db.models import Chat, HiddenMessage, Media, Member, Message, Receipt, User
from voxbox.timeutil import isoformat

Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str)]


class UserOut(BaseModel):
    id: str
    handle: str
    display_name: str
    created_at: Timestamp


class MeOut(UserOut):
    is_admin: bool


class Receipts(BaseModel):
    delivered: list[str] = Field(default_factory=list)
    read: list[str] = Field(default_factory=list)
    played: list[str] = Field(default_factory=list)


class MediaOut(BaseModel):
    id: str
    kind: Literal["voice", "audio"]
    content_type: str
    size: int
    duration_ms: int | None
    waveform: list[int]
    filename: str
    created_at: Timestamp
    # processing (a long file in a background job), ready, or failed (see error)
    state: Literal["processing", "ready", "failed"]
    error: str | None = None


VOICE_CONTENT_TYPE = "audio/ogg; codecs=opus"


def media_out(media: Media) -> MediaOut:
    """A voice note is its Ogg/Opus; an audio file is its original (with an Ogg rendition)."""
    voice = media.kind == "voice"
    return MediaOut(
        id=media.id,
        kind=media.kind,
        content_type=VOICE_CONTENT_TYPE
        if voice
        else mediatypes.safe_content_type(media.source_content_type),
        size=(media.ogg_size or 0) if voice else media.source_size,
        duration_ms=media.duration_ms,
        waveform=json.loads(media.waveform) if media.waveform else [],
        filename=media.filename,
        created_at=media.created_at,
        state=media.state,
        error=media.error,
    )


class MessageOut(BaseModel):
    id: str
    chat_id: str
    client_id: str
    sender: str
    kind: Literal["text", "voice", "audio"]
    text: str | None
    media: MediaOut | None = None
    reply_to: str | None
    forwarded: bool
    view_once: bool
    deleted: bool
    created_at: Timestamp
    receipts: Receipts = Field(default_factory=Receipts)


class MemberOut(BaseModel):
    handle: str
    display_name: str
    role: Literal["admin", "member"]


class ChatOut(BaseModel):
    id: str
    kind: Literal["direct", "group", "self"]
    title: str | None
    members: list[MemberOut]
    last_message: MessageOut | None
    unread_count: int
    updated_at: Timestamp


class ReceiptOut(BaseModel):
    message_id: str
    chat_id: str
    handle: str
    kind: Literal["delivered", "read", "played"]
    at: Timestamp


class MemberRemovedOut(BaseModel):
    chat_id: str
    handle: str


class PresenceOut(BaseModel):
    chat_id: str
    handle: str
    state: Literal["typing", "recording", "idle"]


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id, handle=user.handle, display_name=user.display_name, created_at=user.created_at
    )


def me_out(user: User) -> MeOut:
    return MeOut(**user_out(user).model_dump(), is_admin=user.is_admin)


def message_out(
    message: Message,
    sender_handle: str,
    receipts: Receipts | None = None,
    media: MediaOut | None = None,
) -> MessageOut:
    """The message as clients see it; ``media`` is left out by the caller where it is gone."""
    deleted = message.deleted_at is not None
    return MessageOut(
        id=message.id,
        chat_id=message.chat_id,
        client_id=message.client_id,
        sender=sender_handle,
        kind=message.kind,
        text=None if deleted else message.text,
        media=None if deleted else media,
        reply_to=message.reply_to_id,
        forwarded=message.forwarded_from_id is not None,
        view_once=message.view_once,
        deleted=deleted,
        created_at=message.created_at,
        receipts=receipts or Receipts(),
    )


def visible_to(member: Member) -> list[ColumnElement[bool]]:
    """Conditions selecting the messages of member's chat that member may see."""
    conds: list[ColumnElement[bool]] = [
        Message.chat_id == member.chat_id,
        Message.id > member.joined_id,
    ]
    if member.left_id is not None:
        conds.append(Message.id <= member.left_id)
    conds.append(
        ~select(HiddenMessage.message_id)
        .where(HiddenMessage.user_id == member.user_id, HiddenMessage.message_id == Message.id)
        .exists()
    )
    return conds


async def load_messages(
    session: AsyncSession, messages: Sequence[Message], viewer_id: str | None = None
) -> list[MessageOut]:
    """Views of messages with sender handles, receipts and media, in the given order.

    For a viewer, a view-once message they received and played comes without its media.
    """
    if not messages:
        return []
    ids = [m.id for m in messages]
    senders = dict(
        (
            await session.execute(
                select(User.id, User.handle).where(User.id.in_({m.sender_id for m in messages}))
            )
        ).all()
    )
    receipts: dict[str, Receipts] = defaultdict(Receipts)
    rows = await session.execute(
        select(
            Receipt.message_id,
            User.handle,
            Receipt.delivered_at,
            Receipt.read_at,
            Receipt.played_at,
        )
        .join(User, User.id == Receipt.user_id)
        .where(Receipt.message_id.in_(ids))
        .order_by(User.handle)
    )
    for message_id, handle, delivered_at, read_at, played_at in rows.all():
        r = receipts[message_id]
        if delivered_at is not None:
            r.delivered.append(handle)
        if read_at is not None:
            r.read.append(handle)
        if played_at is not None:
            r.played.append(handle)
    media_ids = {m.media_id for m in messages if m.media_id}
    media = (
        {
            row.id: media_out(row)
            for row in (await session.scalars(select(Media).where(Media.id.in_(media_ids)))).all()
        }
        if media_ids
        else {}
    )
    view_once = [m.id for m in messages if m.view_once and m.sender_id != viewer_id]
    played: set[str] = set()
    if viewer_id is not None and view_once:
        played = set(
            await session.scalars(
                select(Receipt.message_id).where(
                    Receipt.user_id == viewer_id,
                    Receipt.message_id.in_(view_once),
                    Receipt.played_at.is_not(None),
                )
            )
        )
    return [
        message_out(
            m,
            senders[m.sender_id],
            receipts.get(m.id),
            None if m.media_id is None or m.id in played else media[m.media_id],
        )
        for m in messages
    ]


async def load_chats(session: AsyncSession, viewer_id: str, chats: Sequence[Chat]) -> list[ChatOut]:
    """Views of chats as ``viewer_id`` sees them (a member of each, possibly a former one)."""
    if not chats:
        return []
    chat_ids = [c.id for c in chats]
    rows = await session.execute(
        select(Member, User.handle, User.display_name)
        .join(User, User.id == Member.user_id)
        .where(Member.chat_id.in_(chat_ids))
        .order_by(Member.role, User.handle)
    )
    members: dict[str, list[MemberOut]] = defaultdict(list)
    mine: dict[str, Member] = {}
    for member, handle, display_name in rows.all():
        if member.user_id == viewer_id:
            mine[member.chat_id] = member
        if member.left_id is None:
            members[member.chat_id].append(
                MemberOut(handle=handle, display_name=display_name, role=member.role)
            )
    views = []
    for chat in chats:
        me = mine[chat.id]
        last = await session.scalar(
            select(Message).where(*visible_to(me)).order_by(Message.id.desc()).limit(1)
        )
        last_view = (await load_messages(session, [last], viewer_id))[0] if last else None
        since = max(me.joined_id, me.last_read_id or "")
        unread = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                *visible_to(me),
                Message.id > since,
                Message.sender_id != viewer_id,
                Message.deleted_at.is_(None),
            )
        )
        views.append(
            ChatOut(
                id=chat.id,
                kind=chat.kind,
                title=chat.title,
                members=members[chat.id],
                last_message=last_view,
                unread_count=int(unread or 0),
                updated_at=chat.updated_at,
            )
        )
    return views


async def load_chat(session: AsyncSession, viewer_id: str, chat: Chat) -> ChatOut:
    return (await load_chats(session, viewer_id, [chat]))[0]
