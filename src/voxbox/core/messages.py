"""Messages: send (idempotent by client_id), list, delete, forward, star."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import (
    access_chat,
    access_chat_members,
    access_message,
    active_member_ids,
    check_active,
)
from voxbox.core.backends import Backends
from voxbox.core.errors import Forbidden, Invalid, NotFound
from voxbox.core.events import log_event
from voxbox.core.media import access_media, finish_upload, release_media
from voxbox.core.receipts import do_mark_delivered, undelivered
from voxbox.core.views import MessageOut, load_messages, media_out, message_out, visible_to
from voxbox.db.models import Chat, HiddenMessage, Media, Member, Message, Star, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.ids import new_id
from voxbox.metrics import MESSAGE_SEND_SECONDS
from voxbox.timeutil import utcnow

MAX_CLIENT_ID = 64


def check_text(text: str | None, max_chars: int) -> str:
    if text is None or not text.strip():
        raise Invalid("A text message needs non-empty text.")
    if len(text) > max_chars:
        raise Invalid(f"A text message has at most {max_chars} characters.")
    return text


def check_client_id(client_id: str) -> str:
    if not 1 <= len(client_id) <= MAX_CLIENT_ID:
        raise Invalid(f"client_id has 1 to {MAX_CLIENT_ID} characters.")
    return client_id


async def send_message(
    b: Backends,
    sender: User,
    chat_id: str,
    *,
    client_id: str,
    kind: Literal["text", "voice", "audio"],
    text: str | None = None,
    reply_to: str | None = None,
    view_once: bool = False,
    media_id: str | None = None,
    upload_id: str | None = None,
) -> tuple[MessageOut, bool]:
    """Post a message; returns it and whether it is new.

    The same client_id from the same sender returns the first message (False), also when both
    calls race: the unique (sender, client_id) index decides and the loser reads the winner.
    The message and its message.created events commit together.
    """
    started = time.perf_counter()
    check_client_id(client_id)
    media_kind = kind != "text"
    if media_kind:
        if text is not None:
            raise Invalid("Voice and audio messages have no text.")
        if (media_id is None) == (upload_id is None):
            raise Invalid("A voice or audio message needs exactly one of media_id, upload_id.")
    else:
        if media_id is not None or upload_id is not None:
            raise Invalid("A text message has no media.")
        text = check_text(text, b.settings.limits.max_text_chars)
    if view_once and kind != "voice":
        raise Invalid("Only voice messages can be view-once.")
    if upload_id is not None:
        # Finishing may take a while (processing): check first, then finish outside the write.
        async with b.read() as session:
            existing = await _by_client_id(session, sender, client_id)
            if existing is not None:
                return existing, False
            _, member = await access_chat(session, sender.id, chat_id)
            check_active(member)
        media_id = (await finish_upload(b, sender, upload_id, kind)).id  # type: ignore[arg-type]
    try:
        # A repeated client_id fails the insert on the unique index: answered below.
        async with b.transaction() as session:
            chat, member, recipients = await access_chat_members(session, sender.id, chat_id)
            check_active(member)
            if reply_to is not None:
                await _check_reply_target(session, sender.id, chat.id, reply_to)
            if media_id is not None:
                media = await access_media(session, sender.id, media_id)
                if media.kind != kind:
                    raise Invalid(f"This media is {media.kind}, not {kind}.")
            view = await do_post(
                session,
                chat,
                sender,
                recipients,
                client_id=client_id,
                kind=kind,
                text=text,
                reply_to_id=reply_to,
                media_id=media_id,
                view_once=view_once,
            )
    except IntegrityError:
        async with b.read() as session:
            existing = await _by_client_id(session, sender, client_id)
        if existing is None:
            raise
        return existing, False
    MESSAGE_SEND_SECONDS.observe(time.perf_counter() - started)
    return view, True


async def _by_client_id(session: AsyncSession, sender: User, client_id: str) -> MessageOut | None:
    message = await session.scalar(
        select(Message).where(Message.sender_id == sender.id, Message.client_id == client_id)
    )
    return (await load_messages(session, [message], sender.id))[0] if message else None


async def _check_reply_target(
    session: AsyncSession, user_id: str, chat_id: str, target: str
) -> None:
    try:
        message, _, _ = await access_message(session, user_id, target)
    except NotFound:
        message = None
    if message is None or message.chat_id != chat_id:
        raise Invalid("reply_to must be a message of this chat.")


async def do_post(
    session: AsyncSession,
    chat: Chat,
    sender: User,
    recipients: Sequence[str],
    *,
    client_id: str,
    kind: str,
    text: str | None,
    reply_to_id: str | None = None,
    forwarded_from_id: str | None = None,
    media_id: str | None = None,
    view_once: bool = False,
) -> MessageOut:
    """Insert a message and log message.created for every current member; returns its view.

    Runs inside a write transaction; the caller checked the sender may post here.
    """
    now = utcnow()
    message = Message(
        id=new_id(),
        chat_id=chat.id,
        sender_id=sender.id,
        client_id=client_id,
        kind=kind,
        text=text,
        reply_to_id=reply_to_id,
        forwarded_from_id=forwarded_from_id,
        media_id=media_id,
        view_once=view_once,
        created_at=now,
    )
    session.add(message)
    chat.updated_at, chat.last_message_id = now, message.id
    await session.flush()
    media = await session.get(Media, media_id) if media_id else None
    view = message_out(message, sender.handle, media=media_out(media) if media else None)
    await log_event(session, recipients, "message.created", view, message_id=message.id)
    return view


async def list_messages(
    b: Backends,
    user: User,
    chat_id: str,
    *,
    before: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[MessageOut], bool]:
    """A page of the messages the user may see, oldest first, and whether more lie beyond it.

    With ``after``: the oldest messages after it; otherwise the newest (before ``before``).
    Fetching counts as delivery: messages of others get the user's delivered receipt.
    """
    if not 1 <= limit <= b.settings.limits.page_max:
        raise Invalid(f"limit is 1 to {b.settings.limits.page_max}.")
    async with b.read() as session:
        _, member = await access_chat(session, user.id, chat_id)
        query = select(Message).where(*visible_to(member))
        if after is not None:
            query = query.where(Message.id > after).order_by(Message.id)
        else:
            query = query.order_by(Message.id.desc())
        if before is not None:
            query = query.where(Message.id < before)
        rows = list(await session.scalars(query.limit(limit + 1)))
        has_more = len(rows) > limit
        rows = rows[:limit]
        if after is None:
            rows.reverse()
        pending = await undelivered(session, user.id, rows)
    if pending:
        async with b.transaction() as session:
            await do_mark_delivered(session, user, pending)
    async with b.read() as session:
        return await load_messages(session, rows, user.id), has_more


async def delete_message(
    b: Backends, user: User, message_id: str, scope: Literal["me", "everyone"]
) -> None:
    """Delete for me (hide it from my views) or for everyone (sender only: text erased)."""
    async with b.transaction() as session:
        message, chat, _ = await access_message(session, user.id, message_id)
        if scope == "me":
            await session.execute(
                insert_ignoring_conflicts(session, HiddenMessage),
                [{"user_id": user.id, "message_id": message.id}],
            )
            await session.execute(
                delete(Star).where(Star.user_id == user.id, Star.message_id == message.id)
            )
            return
        if message.sender_id != user.id:
            raise Forbidden("Only the sender can delete a message for everyone.")
        if message.deleted_at is not None:
            return
        released = message.media_id
        message.deleted_at, message.text, message.media_id = utcnow(), None, None
        await session.flush()
        view = (await load_messages(session, [message]))[0]
        await log_event(session, await active_member_ids(session, chat.id), "message.updated", view)
    if released is not None:
        await release_media(b, released)


async def forward_message(
    b: Backends, user: User, message_id: str, chat_ids: Sequence[str]
) -> list[MessageOut]:
    """Copy a message into up to ``forward_max_chats`` chats the user is in; all or nothing."""
    unique = list(dict.fromkeys(chat_ids))
    max_chats = b.settings.limits.forward_max_chats
    if not 1 <= len(unique) <= max_chats:
        raise Invalid(f"Forward to 1 to {max_chats} chats at a time.")
    async with b.transaction() as session:
        source, _, _ = await access_message(session, user.id, message_id)
        if source.deleted_at is not None:
            raise Invalid("A deleted message cannot be forwarded.")
        if source.view_once:
            raise Invalid("A view-once message cannot be forwarded.")
        posted = []
        for chat_id in unique:
            chat, member, recipients = await access_chat_members(session, user.id, chat_id)
            check_active(member)
            posted.append(
                await do_post(
                    session,
                    chat,
                    user,
                    recipients,
                    client_id=new_id(),
                    kind=source.kind,
                    text=source.text,
                    forwarded_from_id=source.id,
                    media_id=source.media_id,
                )
            )
        return posted


async def star(b: Backends, user: User, message_id: str, starred: bool) -> None:
    async with b.transaction() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        if starred:
            await session.execute(
                insert_ignoring_conflicts(session, Star),
                [{"user_id": user.id, "message_id": message.id, "created_at": utcnow()}],
            )
        else:
            await session.execute(
                delete(Star).where(Star.user_id == user.id, Star.message_id == message.id)
            )


async def starred(b: Backends, user: User) -> list[MessageOut]:
    """The user's starred messages they can still see, newest first."""
    async with b.read() as session:
        rows = await session.execute(
            select(Message, Member)
            .join(Star, (Star.message_id == Message.id) & (Star.user_id == user.id))
            .join(Member, (Member.chat_id == Message.chat_id) & (Member.user_id == user.id))
            .order_by(Message.id.desc())
        )
        visible = [
            m
            for m, member in rows.all()
            if m.id > member.joined_id and (member.left_id is None or m.id <= member.left_id)
        ]
        return await load_messages(session, visible, user.id)


async def get_message(b: Backends, user: User, message_id: str) -> MessageOut:
    async with b.read() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        return (await load_messages(session, [message], user.id))[0]
