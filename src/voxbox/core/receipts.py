"""Receipts: delivered (ack or fetch), read (up to a message), played (voice and audio)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import access_chat, access_message
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid
from voxbox.core.events import USERS, NewEvent, lock_users, log_event, log_events
from voxbox.core.views import ReceiptOut, load_chat, load_messages, visible_to
from voxbox.db.models import Event, Message, Receipt, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)


async def undelivered(
    session: AsyncSession, user_id: str, messages: Sequence[Message]
) -> list[Message]:
    """Those of ``messages`` sent by others that have no delivered receipt from the user yet."""
    others = [m for m in messages if m.sender_id != user_id]
    if not others:
        return []
    done = set(
        await session.scalars(
            select(Receipt.message_id).where(
                Receipt.user_id == user_id, Receipt.message_id.in_([m.id for m in others])
            )
        )
    )
    return [m for m in others if m.id not in done]


async def _log_receipts(
    session: AsyncSession,
    handle: str,
    messages: Sequence[Message],
    kind: Literal["delivered", "read", "played"],
    at: datetime,
) -> None:
    """Tell each message's sender that ``handle`` got, read or played it."""
    await log_events(
        session,
        [
            NewEvent(
                [m.sender_id],
                "receipt",
                ReceiptOut(message_id=m.id, chat_id=m.chat_id, handle=handle, kind=kind, at=at),
            )
            for m in messages
        ],
    )


async def do_mark_delivered(session: AsyncSession, user: User, messages: Sequence[Message]) -> None:
    """Record the user's delivered receipts; tell each sender. Runs inside a write transaction."""
    candidates = [m for m in messages if m.sender_id != user.id]
    if not candidates:
        return
    await lock_users(session, {m.sender_id for m in candidates})
    now = utcnow()
    inserted = set(
        await session.scalars(
            insert_ignoring_conflicts(session, Receipt).returning(Receipt.message_id),
            [{"message_id": m.id, "user_id": user.id, "delivered_at": now} for m in candidates],
        )
    )
    await _log_receipts(
        session, user.handle, [m for m in candidates if m.id in inserted], "delivered", now
    )


async def ack_many(b: Backends, acks: Mapping[str, tuple[User, int]]) -> None:
    """Users' clients handled their events up to a seq (user id -> (user, seq)): the messages
    in them are delivered. One transaction for all, so acks from many sockets cost one write.
    """
    async with b.transaction() as session:
        rows = await session.execute(
            select(User.id, User.acked_seq, User.last_seq).where(User.id.in_(list(acks)))
        )
        ranges = {
            uid: (acked, min(acks[uid][1], last))
            for uid, acked, last in rows.all()
            if min(acks[uid][1], last) > acked
        }
        if not ranges:
            return
        delivered = (
            await session.execute(
                select(Event.user_id, Message)
                .join(Message, Message.id == Event.message_id)
                .where(
                    Event.type == "message.created",
                    or_(
                        *(
                            and_(Event.user_id == uid, Event.seq > lo, Event.seq <= hi)
                            for uid, (lo, hi) in ranges.items()
                        )
                    ),
                )
            )
        ).all()
        await lock_users(session, {*ranges, *(m.sender_id for _, m in delivered)})
        await session.execute(
            update(USERS)
            .where(USERS.c.id == bindparam("uid"), USERS.c.acked_seq < bindparam("hi"))
            .values(acked_seq=bindparam("hi")),
            [{"uid": uid, "hi": hi} for uid, (_, hi) in ranges.items()],
        )
        candidates = [(uid, m) for uid, m in delivered if m.sender_id != uid]
        if not candidates:
            return
        now = utcnow()
        inserted = set(
            (
                await session.execute(
                    insert_ignoring_conflicts(session, Receipt).returning(
                        Receipt.message_id, Receipt.user_id
                    ),
                    [
                        {"message_id": m.id, "user_id": uid, "delivered_at": now}
                        for uid, m in candidates
                    ],
                )
            ).tuples()
        )
        await log_events(
            session,
            [
                NewEvent(
                    [m.sender_id],
                    "receipt",
                    ReceiptOut(
                        message_id=m.id,
                        chat_id=m.chat_id,
                        handle=acks[uid][0].handle,
                        kind="delivered",
                        at=now,
                    ),
                )
                for uid, m in candidates
                if (m.id, uid) in inserted
            ],
        )


class AckWriter:
    """Collects the acks of every socket in this process and writes them in rounds.

    Each round is one ``ack_many`` transaction for everything that arrived meanwhile, so a
    group message acked by 200 members costs a few writes, not 200.
    """

    def __init__(self, b: Backends) -> None:
        self._b = b
        self._pending: dict[str, tuple[User, int]] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ack-writer")

    def offer(self, user: User, seq: int) -> None:
        current = self._pending.get(user.id)
        if current is None or seq > current[1]:
            self._pending[user.id] = (user, seq)
            self._wake.set()

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not (self._closing and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if not batch:
                continue
            try:
                await ack_many(self._b, batch)
            except Exception:
                log.exception("writing %d acks failed", len(batch))


async def mark_read(b: Backends, user: User, chat_id: str, up_to: str) -> None:
    """Mark the chat read up to (and including) ``up_to``; senders get read receipts."""
    async with b.transaction() as session:
        chat, member = await access_chat(session, user.id, chat_id)
        target, _, _ = await access_message(session, user.id, up_to)
        if target.chat_id != chat.id:
            raise Invalid("up_to must be a message of this chat.")
        since = max(member.joined_id, member.last_read_id or "")
        if target.id <= since:
            return
        messages = list(
            await session.scalars(
                select(Message).where(
                    *visible_to(member),
                    Message.id > since,
                    Message.id <= target.id,
                    Message.sender_id != user.id,
                    Message.deleted_at.is_(None),
                )
            )
        )
        await lock_users(session, {user.id, *(m.sender_id for m in messages)})
        member.last_read_id = target.id
        now = utcnow()
        newly_read = await _set_receipt(session, user, messages, "read", now)
        await _log_receipts(session, user.handle, newly_read, "read", now)
        await session.flush()
        # The reader's other devices update their unread counts.
        await log_event(session, [user.id], "chat.updated", await load_chat(session, user.id, chat))


async def _set_receipt(
    session: AsyncSession,
    user: User,
    messages: Sequence[Message],
    kind: Literal["read", "played"],
    at: datetime,
) -> list[Message]:
    """Set read_at or played_at (implying delivered) where unset; returns the messages changed."""
    if not messages:
        return []
    column = Receipt.read_at if kind == "read" else Receipt.played_at
    ids = [m.id for m in messages]
    changed = set(
        await session.scalars(
            update(Receipt)
            .where(Receipt.user_id == user.id, Receipt.message_id.in_(ids), column.is_(None))
            .values({column: at})
            .returning(Receipt.message_id),
            execution_options={"synchronize_session": False},
        )
    )
    changed |= set(
        await session.scalars(
            insert_ignoring_conflicts(session, Receipt).returning(Receipt.message_id),
            [
                {"message_id": i, "user_id": user.id, "delivered_at": at, column.key: at}
                for i in ids
            ],
        )
    )
    return [m for m in messages if m.id in changed]


async def mark_played(b: Backends, user: User, message_id: str) -> None:
    """The user played a voice or audio message; its sender gets a played receipt."""
    async with b.transaction() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        if message.kind not in ("voice", "audio"):
            raise Invalid("Only voice and audio messages can be played.")
        if message.sender_id == user.id:
            return
        await lock_users(session, {user.id, message.sender_id})
        now = utcnow()
        played = await _set_receipt(session, user, [message], "played", now)
        await _log_receipts(session, user.handle, played, "played", now)
        if played and message.view_once:
            # Opened once: from now on the player's views of it come without media.
            view = (await load_messages(session, [message], user.id))[0]
            await log_event(session, [user.id], "message.updated", view)
