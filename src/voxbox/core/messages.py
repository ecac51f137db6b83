"""Messages: send (idempotent by client_id), list, delete, forward, star."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voxbox.config import LimitsSettings
from voxbox.core.access import (
    access_chat,
    access_message,
    active_member_ids,
    can_see,
    check_active,
    may_fetch_media,
    may_post_media,
    visible_to,
)
from voxbox.core.backends import Backends
from voxbox.core.errors import Forbidden, Invalid, NotFound, RateLimited, VoxboxError
from voxbox.core.events import NewEvent, append_events, log_event, publish_ephemeral
from voxbox.core.media import finish_upload, release_media
from voxbox.core.principal import Principal
from voxbox.core.receipts import do_mark_delivered, undelivered
from voxbox.core.transcripts import request_transcripts
from voxbox.core.views import (
    TRANSCRIPT_OFF,
    LogCheckOut,
    MessageOut,
    load_messages,
    media_out,
    transcript_out,
)
from voxbox.core.writer import BatchResult
from voxbox.db.models import Chat, HiddenMessage, Media, Member, Message, Star, Transcript
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


@dataclass(frozen=True)
class NewMessage:
    """One message to post, checked for its own fields (``check_new_message``)."""

    chat_id: str
    client_id: str
    kind: str
    text: str | None = None
    reply_to_id: str | None = None
    forwarded_from_id: str | None = None
    media_id: str | None = None
    view_once: bool = False


@dataclass(frozen=True)
class Post:
    """One caller's messages, posted together or not at all (a forward posts several)."""

    sender_id: str
    sender_handle: str
    messages: tuple[NewMessage, ...]


@dataclass(frozen=True)
class Posted:
    """The messages a post created, or, for a client_id used before, the first message's id."""

    messages: tuple[MessageOut, ...] = ()
    existing_id: str | None = None


def check_new_message(
    limits: LimitsSettings,
    chat_id: str,
    *,
    client_id: str,
    kind: Literal["text", "voice", "audio"],
    text: str | None,
    reply_to: str | None,
    view_once: bool,
    media_id: str | None,
    upload_id: str | None,
) -> NewMessage:
    """The message's own fields, checked (nothing read, nothing written)."""
    check_client_id(client_id)
    if kind == "text":
        if media_id is not None or upload_id is not None:
            raise Invalid("A text message has no media.")
        text = check_text(text, limits.max_text_chars)
    else:
        if text is not None:
            raise Invalid("Voice and audio messages have no text.")
        if (media_id is None) == (upload_id is None):
            raise Invalid("A voice or audio message needs exactly one of media_id, upload_id.")
    if view_once and kind != "voice":
        raise Invalid("Only voice messages can be view-once.")
    return NewMessage(chat_id, client_id, kind, text, reply_to, None, media_id, view_once)


async def send_message(
    b: Backends,
    sender: Principal,
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
    calls race. Everything is checked before anything is written or finished: a voice message
    sent from an upload with a bad ``reply_to`` leaves the upload as it was. The message and
    its message.created events commit together, in a batch with other posts (``core/writer``).
    """
    started = time.perf_counter()
    await check_send_rate(b, sender)
    new = check_new_message(
        b.settings.limits,
        chat_id,
        client_id=client_id,
        kind=kind,
        text=text,
        reply_to=reply_to,
        view_once=view_once,
        media_id=media_id,
        upload_id=upload_id,
    )
    if upload_id is not None:
        # Finishing may take a while (processing): check everything first, finish outside the
        # write; the batch checks again (cheaply) when it posts.
        async with b.read() as session:
            existing = await _by_client_id(session, sender.id, client_id)
            if existing is not None:
                await _make_sure_published(b, existing.chat_id)
                return existing, False
            await _check_can_post(session, sender.id, chat_id, reply_to)
        media = await finish_upload(b, sender, upload_id, kind)  # type: ignore[arg-type]
        new = replace(new, media_id=media.id)
    if new.media_id is not None and not view_once:
        await request_transcripts(b, sender.id, [new.media_id])
    posted = await _post(b, Post(sender.id, sender.handle, (new,)))
    if posted.existing_id is not None:
        async with b.read() as session:
            first = await session.get_one(Message, posted.existing_id)
            existing = (await load_messages(session, [first], sender.id))[0]
        await _make_sure_published(b, first.chat_id)
        return existing, False
    MESSAGE_SEND_SECONDS.observe(time.perf_counter() - started)
    return posted.messages[0], True


async def _make_sure_published(b: Backends, chat_id: str) -> None:
    """A retried send found its message committed; the request that committed it may have
    died before publishing. The chat's members' streams read their logs now (core/realtime)."""
    async with b.read() as session:
        members = await active_member_ids(session, chat_id)
    await publish_ephemeral(b.bus, members, "log.check", LogCheckOut())


async def check_send_rate(b: Backends, sender: Principal) -> None:
    """A burst and an hourly rate of messages per user (sends and forwards); 429 past either."""
    limits = b.settings.limits
    windows = ((limits.send_burst_seconds, limits.send_burst), (3600, limits.sends_per_hour))
    hits = await asyncio.gather(
        *(b.limiter.hit(f"send:{sender.id}:{window}", window) for window, _ in windows)
    )
    for (window, most), (count, retry) in zip(windows, hits, strict=True):
        if count > most:
            raise RateLimited(f"Too many messages: at most {most} in {window} s.", retry)


async def _post(b: Backends, post: Post) -> Posted:
    try:
        return await b.writes.submit(do_send_messages, post)
    except IntegrityError:
        # Another worker committed the same client_id first (PostgreSQL): answer with theirs.
        if len(post.messages) != 1:
            raise
        async with b.read() as session:
            existing = await session.scalar(
                select(Message.id).where(
                    Message.sender_id == post.sender_id,
                    Message.client_id == post.messages[0].client_id,
                )
            )
        if existing is None:
            raise
        return Posted(existing_id=existing)


async def _by_client_id(session: AsyncSession, sender_id: str, client_id: str) -> MessageOut | None:
    message = await session.scalar(
        select(Message).where(Message.sender_id == sender_id, Message.client_id == client_id)
    )
    return (await load_messages(session, [message], sender_id))[0] if message else None


async def _check_can_post(
    session: AsyncSession, user_id: str, chat_id: str, reply_to: str | None
) -> None:
    _, member = await access_chat(session, user_id, chat_id)
    check_active(member)
    if reply_to is not None:
        target = await session.scalar(
            select(Message.id).where(
                Message.id == reply_to, Message.chat_id == chat_id, can_see(user_id)
            )
        )
        if target is None:
            raise Invalid(REPLY_ELSEWHERE)


REPLY_ELSEWHERE = "reply_to must be a message of this chat."
MESSAGES = cast(Table, Message.__table__)
CHATS = cast(Table, Chat.__table__)
MEMBERS = cast(Table, Member.__table__)


def do_send_messages(conn: Connection, posts: list[Post]) -> BatchResult[Posted]:
    """Post a batch of posts in the caller's transaction: check each, then write them all.

    A post that fails a check gets its error as its outcome and writes nothing; the others go
    on. The chats are locked first (PostgreSQL) and the ids allocated after, so in every chat id
    order is commit order. Messages, chats and events are each written with one statement.
    """
    chat_ids = sorted({m.chat_id for p in posts for m in p.messages})
    if conn.dialect.name != "sqlite":
        conn.execute(_LOCK_CHATS, {"ids": chat_ids})
    active: dict[str, list[str]] = defaultdict(list)
    former: set[tuple[str, str]] = set()
    for chat_id, user_id, left_id in conn.execute(_MEMBERS_OF, {"ids": chat_ids}):
        if left_id is None:
            active[chat_id].append(user_id)
        else:
            former.add((chat_id, user_id))
    keys = {(p.sender_id, m.client_id) for p in posts for m in p.messages}
    used: dict[tuple[str, str], str] = {
        (sender_id, client_id): message_id
        for sender_id, client_id, message_id in conn.execute(
            _USED_CLIENT_IDS,
            {"senders": sorted({k[0] for k in keys}), "clients": sorted({k[1] for k in keys})},
        )
        if (sender_id, client_id) in keys
    }
    now = utcnow()
    outcomes: list[Posted | VoxboxError] = []
    rows: list[dict[str, Any]] = []
    events: list[NewEvent] = []
    last_in_chat: dict[str, str] = {}
    for post in posts:
        first = post.messages[0]
        if len(post.messages) == 1 and (post.sender_id, first.client_id) in used:
            outcomes.append(Posted(existing_id=used[post.sender_id, first.client_id]))
            continue
        try:
            staged = [_stage(conn, post, m, active, former, now) for m in post.messages]
        except VoxboxError as exc:
            outcomes.append(exc)
            continue
        for row, view in staged:
            rows.append(row)
            used[post.sender_id, row["client_id"]] = row["id"]
            last_in_chat[row["chat_id"]] = row["id"]
            events.append(
                NewEvent(active[row["chat_id"]], "message.created", view, message_id=row["id"])
            )
        outcomes.append(Posted(messages=tuple(view for _, view in staged)))
    if not rows:
        return BatchResult(outcomes, [])
    conn.execute(_INSERT_MESSAGES, rows)
    conn.execute(
        _SET_LAST_MESSAGE,
        [{"chat": chat, "last": last, "at": now} for chat, last in last_in_chat.items()],
    )
    return BatchResult(outcomes, append_events(conn, events))


# do_send_messages' statements, built once (see core/events.py).
_LOCK_CHATS = (
    select(CHATS.c.id)
    .where(CHATS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(CHATS.c.id)
    .with_for_update()
)
_MEMBERS_OF = select(MEMBERS.c.chat_id, MEMBERS.c.user_id, MEMBERS.c.left_id).where(
    MEMBERS.c.chat_id.in_(bindparam("ids", expanding=True))
)
# Not ``(sender_id, client_id) IN (VALUES ...)``: SQLite scans the whole table for that. Two INs
# search the unique index; rows of other pairs they match are dropped by the caller.
_USED_CLIENT_IDS = select(MESSAGES.c.sender_id, MESSAGES.c.client_id, MESSAGES.c.id).where(
    MESSAGES.c.sender_id.in_(bindparam("senders", expanding=True)),
    MESSAGES.c.client_id.in_(bindparam("clients", expanding=True)),
)
_INSERT_MESSAGES = insert(MESSAGES)
_SET_LAST_MESSAGE = (
    update(CHATS)
    .where(CHATS.c.id == bindparam("chat"))
    .values(updated_at=bindparam("at"), last_message_id=bindparam("last"))
)


def _stage(
    conn: Connection,
    post: Post,
    new: NewMessage,
    active: dict[str, list[str]],
    former: set[tuple[str, str]],
    now: datetime,
) -> tuple[dict[str, Any], MessageOut]:
    """Check one message of a post against the database; its row and its view."""
    if post.sender_id not in active.get(new.chat_id, ()):
        if (new.chat_id, post.sender_id) in former:
            raise Forbidden("You are no longer a member of this chat.")
        raise NotFound("No such chat.")
    if new.reply_to_id is not None:
        target = conn.scalar(
            select(Message.id).where(
                Message.id == new.reply_to_id,
                Message.chat_id == new.chat_id,
                can_see(post.sender_id),
            )
        )
        if target is None:
            raise Invalid(REPLY_ELSEWHERE)
    media = None
    transcript: Transcript | None = None
    if new.media_id is not None:
        with Session(conn) as session:
            found = session.scalar(
                select(Media).where(Media.id == new.media_id, may_post_media(post.sender_id))
            )
            if found is None:
                if session.scalar(
                    select(Media.id).where(
                        Media.id == new.media_id, may_fetch_media(post.sender_id)
                    )
                ):
                    raise Invalid("A view-once voice message cannot be sent again.")
                raise NotFound("No such media.")
            if found.kind != new.kind:
                raise Invalid(f"This media is {found.kind}, not {new.kind}.")
            media = media_out(found)
            # Shared: a transcript being finished (under an update lock) is waited for, so
            # this message is either in its finishing or sees it ready (PostgreSQL).
            transcript = (
                None
                if new.view_once
                else session.get(Transcript, new.media_id, with_for_update={"read": True})
            )
    row = {
        "id": new_id(),
        "chat_id": new.chat_id,
        "sender_id": post.sender_id,
        "client_id": new.client_id,
        "kind": new.kind,
        "text": new.text,
        "reply_to_id": new.reply_to_id,
        "forwarded_from_id": new.forwarded_from_id,
        "media_id": new.media_id,
        "view_once": new.view_once,
        "created_at": now,
        "deleted_at": None,
    }
    view = MessageOut(
        id=row["id"],
        chat_id=new.chat_id,
        client_id=new.client_id,
        sender=post.sender_handle,
        kind=new.kind,
        text=new.text,
        media=media,
        reply_to=new.reply_to_id,
        forwarded=new.forwarded_from_id is not None,
        view_once=new.view_once,
        deleted=False,
        created_at=now,
        transcript=None
        if new.kind == "text"
        else TRANSCRIPT_OFF
        if new.view_once
        else transcript_out(transcript),
    )
    return row, view


async def list_messages(
    b: Backends,
    user: Principal,
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
    b: Backends, user: Principal, message_id: str, scope: Literal["me", "everyone"]
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
    b: Backends, user: Principal, message_id: str, chat_ids: Sequence[str]
) -> list[MessageOut]:
    """Copy a message into up to ``forward_max_chats`` chats the user is in; all or nothing."""
    await check_send_rate(b, user)
    unique = list(dict.fromkeys(chat_ids))
    max_chats = b.settings.limits.forward_max_chats
    if not 1 <= len(unique) <= max_chats:
        raise Invalid(f"Forward to 1 to {max_chats} chats at a time.")
    async with b.read() as session:
        source, _, _ = await access_message(session, user.id, message_id)
    if source.deleted_at is not None:
        raise Invalid("A deleted message cannot be forwarded.")
    if source.view_once:
        raise Invalid("A view-once message cannot be forwarded.")
    copies = tuple(
        NewMessage(
            chat_id,
            client_id=new_id(),
            kind=source.kind,
            text=source.text,
            forwarded_from_id=source.id,
            media_id=source.media_id,
        )
        for chat_id in unique
    )
    posted = await _post(b, Post(user.id, user.handle, copies))
    return list(posted.messages)


async def star(b: Backends, user: Principal, message_id: str, starred: bool) -> None:
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


async def starred(b: Backends, user: Principal) -> list[MessageOut]:
    """The user's starred messages they can still see, newest first."""
    async with b.read() as session:
        visible = await session.scalars(
            select(Message)
            .join(Star, (Star.message_id == Message.id) & (Star.user_id == user.id))
            .where(can_see(user.id))
            .order_by(Message.id.desc())
        )
        return await load_messages(session, list(visible), user.id)


async def get_message(b: Backends, user: Principal, message_id: str) -> MessageOut:
    async with b.read() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        return (await load_messages(session, [message], user.id))[0]
