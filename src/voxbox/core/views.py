"""What clients see: typed schemas of users, chats and messages, and their loaders.

The same schemas are API response bodies and event payloads; ORM rows never leave core.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer, computed_field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from voxbox.core import mediatypes
from voxbox.core.access import can_see, membership_bounds, view_once_spent
from voxbox.core.principal import Principal
from voxbox.db.models import Chat, Media, Member, Message, Receipt, Transcript, User
from voxbox.ids import time_of
from voxbox.timeutil import isoformat

Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str)]


class UserOut(BaseModel):
    id: str
    handle: str
    display_name: str
    created_at: Timestamp


class StorageOut(BaseModel):
    """A user's storage (see core/usage.py). ``quota_bytes`` is null when there is no quota."""

    used_bytes: int
    quota_bytes: int | None
    open_uploads: int
    open_uploads_max: int


class MeOut(UserOut):
    is_admin: bool
    storage: StorageOut
    # Whether the voice and audio messages this user sends are transcribed (PATCH /me).
    transcribe: bool


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


class WordOut(BaseModel):
    w: str
    start_ms: int
    end_ms: int


class TranscriptOut(BaseModel):
    """What is said in a voice or audio message (core/transcripts.py): ``pending`` until the
    background job ends, then ``ready`` (text, language, timed words) or ``failed`` (error);
    ``off`` when it is not transcribed (view-once, the sender turned it off, no engine)."""

    state: Literal["pending", "ready", "failed", "off"]
    text: str | None = None
    language: str | None = None
    words: list[WordOut] = Field(default_factory=list)
    error: str | None = None


TRANSCRIPT_OFF = TranscriptOut(state="off")


def transcript_out(row: Transcript | None) -> TranscriptOut:
    if row is None:
        return TRANSCRIPT_OFF
    return TranscriptOut(
        state=row.state,
        text=row.text,
        language=row.language,
        words=[WordOut(**word) for word in json.loads(row.words)] if row.words else [],
        error=row.error,
    )


class WithdrawnOut(BaseModel):
    """Why a posted message was taken back by the server (its media could not be processed)."""

    reason: str


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
    # Voice and audio messages (not deleted); null for text.
    transcript: TranscriptOut | None = None
    # Set (with ``deleted``) when the server withdrew the message: its media failed to process.
    withdrawn: WithdrawnOut | None = None
    # Kept from elsewhere: "whatsapp", "telegram" (imports) or "backup" (a restored backup).
    imported: Literal["whatsapp", "telegram", "backup"] | None = None
    # The sender's name, for a kept message whose sender is not a user here (``sender`` is
    # then the user who brought it in).
    sender_name: str | None = None


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
    """A ``receipt`` event: ``handles`` (sorted) reached ``kind`` for a message at ``at``.

    In a group, the receipts of one message and kind written together (one batch window) are
    one event; in a direct chat there is one handle. ``handle`` is the first of ``handles``.
    """

    message_id: str
    chat_id: str
    handles: list[str] = Field(min_length=1)
    kind: Literal["delivered", "read", "played"]
    at: Timestamp

    @computed_field  # type: ignore[prop-decorator]
    @property
    def handle(self) -> str:
        return self.handles[0]


class MessageReceiptOut(BaseModel):
    """One recipient's progress with a message (``null``: not yet), for its sender."""

    handle: str
    display_name: str
    delivered_at: Timestamp | None
    read_at: Timestamp | None
    played_at: Timestamp | None


class MessageReceiptsOut(BaseModel):
    """A message's "Message info": each member it was sent to, by handle."""

    receipts: list[MessageReceiptOut]


class MemberRemovedOut(BaseModel):
    chat_id: str
    handle: str


class PresenceOut(BaseModel):
    chat_id: str
    handle: str
    state: Literal["typing", "recording", "idle"]


class SessionEndedOut(BaseModel):
    """Internal, never sent to clients: a login ended (``token``: its hash) or all of them."""

    token: str | None
    everywhere: bool


class LogCheckOut(BaseModel):
    """Internal, never sent to clients: read the log now, something may not have been
    published (a retried send found its message committed by a request that died)."""


def user_out(user: Principal) -> UserOut:
    return UserOut(
        id=user.id, handle=user.handle, display_name=user.display_name, created_at=user.created_at
    )


def me_out(user: Principal, storage: StorageOut, transcribe: bool) -> MeOut:
    return MeOut(
        **user_out(user).model_dump(),
        is_admin=user.is_admin,
        storage=storage,
        transcribe=transcribe,
    )


def message_out(
    message: Message,
    sender_handle: str,
    receipts: Receipts | None = None,
    media: MediaOut | None = None,
    transcript: TranscriptOut | None = None,
) -> MessageOut:
    """The message as clients see it; ``media`` is left out by the caller where it is gone,
    ``transcript`` is its media's (a view-once message's is always off)."""
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
        transcript=None
        if deleted or message.kind == "text"
        else TRANSCRIPT_OFF
        if message.view_once
        else transcript or TRANSCRIPT_OFF,
        withdrawn=WithdrawnOut(reason=media.error or "it could not be processed")
        if deleted and media is not None and media.state == "failed"
        else None,
        imported=message.imported,
        sender_name=message.sender_name,
    )


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
    media: dict[str, MediaOut] = {}
    transcripts: dict[str, TranscriptOut] = {}
    if media_ids:
        found = await session.execute(
            select(Media, Transcript)
            .outerjoin(Transcript, Transcript.media_id == Media.id)
            .where(Media.id.in_(media_ids))
        )
        for row, transcript in found.tuples():
            media[row.id] = media_out(row)
            transcripts[row.id] = transcript_out(transcript)
    view_once = [m.id for m in messages if m.view_once and m.sender_id != viewer_id]
    played: set[str] = set()
    if viewer_id is not None and view_once:
        played = set(
            await session.scalars(
                select(Message.id).where(Message.id.in_(view_once), view_once_spent(viewer_id))
            )
        )
    return [
        message_out(
            m,
            senders[m.sender_id],
            receipts.get(m.id),
            None if m.media_id is None or m.id in played else media[m.media_id],
            transcripts.get(m.media_id) if m.media_id else None,
        )
        for m in messages
    ]


def _member_order(member: MemberOut) -> tuple[str, str]:
    """Admins first, then by handle (sorted here, so every backend's collation agrees)."""
    return member.role, member.handle


def new_chat_view(chat: Chat, members: Iterable[MemberOut]) -> ChatOut:
    """The chat as each of its members sees it right after it was made: no messages yet."""
    return ChatOut(
        id=chat.id,
        kind=chat.kind,
        title=chat.title,
        members=sorted(members, key=_member_order),
        last_message=None,
        unread_count=0,
        updated_at=chat.updated_at,
    )


async def load_chat_views(
    session: AsyncSession, chats: Sequence[Chat], viewer_ids: Collection[str]
) -> dict[tuple[str, str], ChatOut]:
    """Each chat as each viewer who is or was a member of it sees it, keyed (chat id, viewer).

    A fixed number of queries whatever the number of chats and viewers: the members of every
    chat; each viewer's last visible message and unread count per chat, in one statement; and
    the last messages themselves. Viewers who see a chat alike share one ``ChatOut`` object, so
    a caller can log it once for all of them.
    """
    if not chats or not viewer_ids:
        return {}
    chat_ids = [c.id for c in chats]
    rows = await session.execute(
        select(
            Member.chat_id,
            Member.user_id,
            Member.role,
            Member.joined_id,
            Member.left_id,
            User.handle,
            User.display_name,
        )
        .join(User, User.id == Member.user_id)
        .where(Member.chat_id.in_(chat_ids))
    )
    roster: dict[str, list[tuple[str, str, str | None, MemberOut]]] = defaultdict(list)
    # A user in many chats is one MemberOut per role, not one per chat (validation is the cost).
    made: dict[tuple[str, str, str], MemberOut] = {}
    for chat_id, user_id, role, joined_id, left_id, handle, display_name in rows.all():
        member = made.get((role, handle, display_name))
        if member is None:
            member = made[role, handle, display_name] = MemberOut(
                handle=handle, display_name=display_name, role=role
            )
        roster[chat_id].append((user_id, joined_id, left_id, member))

    def members_at(chat_id: str, viewer: str, left: str | None) -> list[MemberOut]:
        """The members now; for a former member, those there when they left (not them)."""
        return sorted(
            (
                member
                for user_id, joined_id, left_id, member in roster[chat_id]
                if (left_id is None if left is None else joined_id < left)
                and (left is None or user_id != viewer)
                and (left is None or left_id is None or left_id > left)
            ),
            key=_member_order,
        )

    viewer = aliased(Member, name="viewer")
    seen = (
        Message.chat_id == viewer.chat_id,
        *membership_bounds(viewer),
        can_see(viewer.user_id),
    )
    last_id = select(Message.id).where(*seen).order_by(Message.id.desc()).limit(1)
    unread = (
        select(func.count())
        .select_from(Message)
        .where(
            *seen,
            Message.id > func.coalesce(viewer.last_read_id, viewer.joined_id),
            Message.sender_id != viewer.user_id,
            Message.deleted_at.is_(None),
        )
    )
    stats = (
        await session.execute(
            select(
                viewer.chat_id,
                viewer.user_id,
                viewer.left_id,
                last_id.scalar_subquery(),
                unread.scalar_subquery(),
            ).where(viewer.chat_id.in_(chat_ids), viewer.user_id.in_(list(viewer_ids)))
        )
    ).all()

    last_ids = {last for _, _, _, last, _ in stats if last is not None}
    last: dict[str, MessageOut] = {}
    spent: set[tuple[str, str]] = set()
    if last_ids:
        found = list(
            await session.scalars(
                select(Message).where(Message.id.in_(last_ids)).order_by(Message.id)
            )
        )
        last = {view.id: view for view in await load_messages(session, found)}
        view_once = [m.id for m in found if m.view_once]
        if view_once:
            played = await session.execute(
                select(Message.id, User.id).where(
                    Message.id.in_(view_once),
                    User.id.in_(list(viewer_ids)),
                    view_once_spent(User.id),
                )
            )
            spent = {(message_id, user_id) for message_id, user_id in played.all()}

    chat_by_id = {c.id: c for c in chats}
    shared: dict[tuple[str, str | None, bool, int, str | None], ChatOut] = {}
    views: dict[tuple[str, str], ChatOut] = {}
    for chat_id, user_id, left, last_id_seen, unread_count in stats:
        hide_media = (last_id_seen, user_id) in spent
        # Current members see the chat alike; a former one sees it as it was when they left.
        key = (chat_id, last_id_seen, hide_media, int(unread_count or 0), left and user_id)
        view = shared.get(key)
        if view is None:
            chat = chat_by_id[chat_id]
            message = last.get(last_id_seen) if last_id_seen else None
            if message is not None and hide_media:
                message = message.model_copy(update={"media": None})
            view = shared[key] = ChatOut(
                id=chat.id,
                kind=chat.kind,
                title=chat.title,
                members=members_at(chat.id, user_id, left),
                last_message=message,
                unread_count=key[3],
                updated_at=chat.updated_at if left is None else min(chat.updated_at, time_of(left)),
            )
        views[chat_id, user_id] = view
    return views


async def load_chats(session: AsyncSession, viewer_id: str, chats: Sequence[Chat]) -> list[ChatOut]:
    """Views of chats as ``viewer_id`` sees them (a member of each, possibly a former one)."""
    views = await load_chat_views(session, chats, [viewer_id])
    return [views[chat.id, viewer_id] for chat in chats]


async def load_chat(session: AsyncSession, viewer_id: str, chat: Chat) -> ChatOut:
    return (await load_chats(session, viewer_id, [chat]))[0]


async def load_chat_for(
    session: AsyncSession, chat: Chat, viewer_ids: Collection[str]
) -> dict[str, ChatOut]:
    """The chat as each viewer (a member, possibly a former one) sees it (see load_chat_views)."""
    views = await load_chat_views(session, [chat], viewer_ids)
    return {user_id: view for (_, user_id), view in views.items()}
