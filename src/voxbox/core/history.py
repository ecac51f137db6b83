"""Keeping history brought in from elsewhere: a chat exported by another app, or a backup.

Such a chat belongs to the user who brought it in, its only member. Its messages keep their
original times (their ids are made from those times, so they sort in the original order) and
their senders: the user's own messages are theirs, a sender mapped to a user here is that user,
and anyone else is kept by name (``sender_name``). Every message is marked with where it came
from (``imported``).

Bringing the same history in again adds nothing: each message has a stable key, stored as its
``client_id``, and a message whose key is already in the chat is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.backends import Backends
from voxbox.core.events import NewEvent, log_events
from voxbox.core.principal import Principal
from voxbox.core.transcripts import do_request_transcripts
from voxbox.core.views import load_chat
from voxbox.db.models import Chat, Media, Member, Message, Receipt, Star
from voxbox.ids import ids_at, new_id
from voxbox.timeutil import utcnow

Origin = Literal["whatsapp", "telegram", "backup"]

# Sorts before every id: a kept chat's member sees messages from any time.
_BEFORE_ALL_IDS = "0" * 26
_PAGE = 500

MESSAGES = cast(Table, Message.__table__)
RECEIPTS = cast(Table, Receipt.__table__)


@dataclass(frozen=True)
class KeptMessage:
    key: str  # stable for the same message in the same source: what makes a second run a no-op
    at: datetime
    kind: Literal["text", "voice", "audio"]
    text: str | None = None
    media: Media | None = None  # a new media row, inserted only if the message is
    sender_id: str | None = None  # a user here; None: the owner's own, or ``sender_name``'s
    sender_name: str | None = None  # someone who is not a user here
    reply_to: str | None = None  # the key of the message replied to
    starred: bool = False
    played_at: datetime | None = None  # the owner played it (others' voice notes)


@dataclass(frozen=True)
class Kept:
    chat_id: str
    added: int
    already_there: int
    ids: dict[str, str]  # message key -> message id, for every message in the chat


def chat_key(owner_id: str, origin: Origin, source: str) -> str:
    """The unique key of the chat kept from ``source`` (e.g. an export's identity)."""
    digest = hashlib.sha256(f"{origin}\0{source}".encode()).hexdigest()[:24]
    return f"kept:{owner_id}:{digest}"


async def keep_chat(
    b: Backends,
    owner: Principal,
    origin: Origin,
    key: str,
    title: str,
    messages: Sequence[KeptMessage],
) -> Kept:
    """Make (or find) the owner's chat ``key`` and add the messages it does not hold yet, in one
    transaction; the owner's clients get ``chat.created`` or ``chat.updated``."""
    async with b.transaction() as session:
        chat = await session.scalar(select(Chat).where(Chat.unique_key == key))
        created = chat is None
        if chat is None:
            now = utcnow()
            chat = Chat(
                id=new_id(), kind="group", title=title, unique_key=key, created_at=now,
                updated_at=now,
            )  # fmt: skip
            session.add(chat)
            session.add(
                Member(chat_id=chat.id, user_id=owner.id, role="admin", joined_id=_BEFORE_ALL_IDS)
            )
            await session.flush()
        ids = await _existing(session, chat.id, [_client_id(origin, m.key) for m in messages])
        fresh = [m for m in messages if _client_id(origin, m.key) not in ids]
        for message, message_id in zip(fresh, ids_at(m.at for m in fresh), strict=True):
            ids[_client_id(origin, message.key)] = message_id
        by_key = {m.key: ids[_client_id(origin, m.key)] for m in messages}
        await _insert(session, owner, origin, chat, fresh, by_key)
        if fresh:
            last_id = await session.scalar(
                select(func.max(Message.id)).where(Message.chat_id == chat.id)
            )
            chat.last_message_id = last_id
            chat.updated_at = max(chat.updated_at, max(m.at for m in fresh))
            member = await session.get(Member, (chat.id, owner.id))
            if member is not None:
                member.last_read_id = last_id
                if chat.kind == "self":  # its only member ever: older messages are theirs too
                    member.joined_id = _BEFORE_ALL_IDS
        if created or fresh:
            view = await load_chat(session, owner.id, chat)
            event = NewEvent([owner.id], "chat.created" if created else "chat.updated", view)
            await log_events(session, [event])
        media_ids = [m.media.id for m in fresh if m.media is not None]
        await do_request_transcripts(b, session, owner.id, media_ids)
    return Kept(chat.id, len(fresh), len(messages) - len(fresh), by_key)


async def kept_keys(b: Backends, origin: Origin, key: str) -> set[str]:
    """The keys of the messages the chat ``key`` already holds (none if there is no such chat):
    what a second run may skip before doing any work for them."""
    prefix = _client_id(origin, "")
    async with b.read() as session:
        client_ids = await session.scalars(
            select(Message.client_id)
            .join(Chat, Chat.id == Message.chat_id)
            .where(Chat.unique_key == key)
        )
        return {c[len(prefix) :] for c in client_ids if c.startswith(prefix)}


def _client_id(origin: Origin, key: str) -> str:
    return f"{origin}:{key}"[:64]


async def _existing(session: AsyncSession, chat_id: str, client_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(client_ids), _PAGE):
        rows = await session.execute(
            select(Message.client_id, Message.id).where(
                Message.chat_id == chat_id, Message.client_id.in_(client_ids[start : start + _PAGE])
            )
        )
        found.update(rows.tuples().all())
    return found


async def _insert(
    session: AsyncSession,
    owner: Principal,
    origin: Origin,
    chat: Chat,
    messages: list[KeptMessage],
    by_key: dict[str, str],
) -> None:
    rows, receipts, stars = [], [], []
    for m in messages:
        message_id = by_key[m.key]
        sender_id = m.sender_id or owner.id
        rows.append(
            {
                "id": message_id,
                "chat_id": chat.id,
                "sender_id": sender_id,
                "client_id": _client_id(origin, m.key),
                "kind": m.kind,
                "text": m.text,
                "media_id": m.media.id if m.media is not None else None,
                "reply_to_id": by_key.get(m.reply_to) if m.reply_to else None,
                "view_once": False,
                "created_at": m.at,
                "imported": origin,
                "sender_name": m.sender_name if m.sender_id is None else None,
            }
        )
        if sender_id != owner.id or m.sender_name is not None:  # someone else's: seen by now
            receipts.append(
                {
                    "message_id": message_id,
                    "user_id": owner.id,
                    "delivered_at": m.at,
                    "read_at": m.at,
                    "played_at": m.played_at if m.kind != "text" else None,
                }
            )
        if m.starred:
            stars.append(Star(user_id=owner.id, message_id=message_id, created_at=m.at))
    session.add_all(m.media for m in messages if m.media is not None)
    await session.flush()
    for start in range(0, len(rows), _PAGE):
        await session.execute(insert(MESSAGES), rows[start : start + _PAGE])
    for start in range(0, len(receipts), _PAGE):
        await session.execute(insert(RECEIPTS), receipts[start : start + _PAGE])
    session.add_all(stars)
