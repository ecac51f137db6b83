"""Receipts: delivered (ack or fetch), read (up to a message), played (voice and audio)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import access_chat, access_message
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid
from voxbox.core.events import log_event
from voxbox.core.views import ReceiptOut, load_chat, load_messages, visible_to
from voxbox.db.models import Event, Message, Receipt, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.timeutil import utcnow


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
    user: User,
    messages: Sequence[Message],
    kind: Literal["delivered", "read", "played"],
    at: datetime,
) -> None:
    for message in messages:
        await log_event(
            session,
            [message.sender_id],
            "receipt",
            ReceiptOut(
                message_id=message.id, chat_id=message.chat_id, handle=user.handle, kind=kind, at=at
            ),
        )


async def do_mark_delivered(session: AsyncSession, user: User, messages: Sequence[Message]) -> None:
    """Record the user's delivered receipts; tell each sender. Runs inside a write transaction."""
    candidates = [m for m in messages if m.sender_id != user.id]
    if not candidates:
        return
    now = utcnow()
    inserted = set(
        await session.scalars(
            insert_ignoring_conflicts(session, Receipt).returning(Receipt.message_id),
            [{"message_id": m.id, "user_id": user.id, "delivered_at": now} for m in candidates],
        )
    )
    await _log_receipts(
        session, user, [m for m in candidates if m.id in inserted], "delivered", now
    )


async def ack(b: Backends, user: User, seq: int) -> None:
    """The user's client handled their events up to ``seq``: messages in them are delivered."""
    async with b.transaction() as session:
        row = (
            await session.execute(
                select(User.acked_seq, User.last_seq).where(User.id == user.id).with_for_update()
            )
        ).one()
        acked, upto = row[0], min(seq, row[1])
        if upto <= acked:
            return
        await session.execute(update(User).where(User.id == user.id).values(acked_seq=upto))
        messages = list(
            await session.scalars(
                select(Message)
                .join(Event, Event.message_id == Message.id)
                .where(
                    Event.user_id == user.id,
                    Event.seq > acked,
                    Event.seq <= upto,
                    Event.type == "message.created",
                )
            )
        )
        await do_mark_delivered(session, user, await undelivered(session, user.id, messages))


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
        member.last_read_id = target.id
        now = utcnow()
        newly_read = await _set_receipt(session, user, messages, "read", now)
        await _log_receipts(session, user, newly_read, "read", now)
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
        now = utcnow()
        played = await _set_receipt(session, user, [message], "played", now)
        await _log_receipts(session, user, played, "played", now)
        if played and message.view_once:
            # Opened once: from now on the player's views of it come without media.
            view = (await load_messages(session, [message], user.id))[0]
            await log_event(session, [user.id], "message.updated", view)
