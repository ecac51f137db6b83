"""Receipts: delivered (ack or fetch), read (up to a message), played (voice and audio)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, Protocol, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import access_chat, access_message, visible_to, within_membership
from voxbox.core.backends import Backends
from voxbox.core.errors import Forbidden, Invalid, VoxboxError
from voxbox.core.events import (
    USERS,
    NewEvent,
    append_events,
    lock_user_rows,
    lock_users,
    log_event,
    log_events,
)
from voxbox.core.principal import Principal
from voxbox.core.views import (
    MessageReceiptOut,
    MessageReceiptsOut,
    ReceiptOut,
    load_chat,
    load_messages,
)
from voxbox.core.writer import BatchResult
from voxbox.db.models import Chat, Event, Member, Message, Receipt, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.events.bus import Envelope
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)
Kind = Literal["delivered", "read", "played"]


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


class SentMessage(Protocol):
    """What a receipt needs to know of a message (an ORM row or a ``MessageRef``)."""

    @property
    def id(self) -> str: ...
    @property
    def chat_id(self) -> str: ...
    @property
    def sender_id(self) -> str: ...


class MessageRef(NamedTuple):
    id: str
    chat_id: str
    sender_id: str


def receipt_events(
    new: Iterable[tuple[SentMessage, str]], kind: Kind, at: datetime
) -> list[NewEvent]:
    """The events telling senders about new receipts of one kind, ``(message, handle)`` pairs
    written in one transaction: one event per message, naming every handle.

    So in a group, what one write records for a message is one event to its sender, not one
    per member; in a direct chat each message has one recipient, hence one handle per event.
    """
    by_message: dict[str, tuple[SentMessage, set[str]]] = {}
    for message, handle in new:
        by_message.setdefault(message.id, (message, set()))[1].add(handle)
    return [
        NewEvent(
            [m.sender_id],
            "receipt",
            ReceiptOut(
                message_id=m.id, chat_id=m.chat_id, handles=sorted(handles), kind=kind, at=at
            ),
        )
        for m, handles in by_message.values()
    ]


async def do_mark_delivered(
    session: AsyncSession, user: Principal, messages: Sequence[Message]
) -> None:
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
    await log_events(
        session,
        receipt_events(
            ((m, user.handle) for m in candidates if m.id in inserted), "delivered", now
        ),
    )


@dataclass(frozen=True)
class Acks:
    """One round of acks: user id -> (handle, highest seq acked), and who ``may_hold``."""

    seqs: Mapping[str, tuple[str, int]]
    may_hold: Set[str] = frozenset()


async def ack_many(
    b: Backends, acks: Mapping[str, tuple[Principal, int]], *, may_hold: Set[str] = frozenset()
) -> set[str]:
    """Users' clients handled their events up to a seq (user id -> (user, seq)): the messages
    in them are delivered. One transaction for all, so acks from many sockets cost one write,
    and each message's new delivered receipts are one event to its sender.

    The acks of users in ``may_hold`` that cover a message of a group are not written; their
    ids are returned, for the caller to pass again (without ``may_hold``) once more members had
    time to ack (see ``AckWriter``).
    """
    seqs = {uid: (user.handle, seq) for uid, (user, seq) in acks.items()}
    return await b.writes.submit(do_acks, Acks(seqs, may_hold))


EVENTS = cast(Table, Event.__table__)
MESSAGES = cast(Table, Message.__table__)
CHATS = cast(Table, Chat.__table__)
RECEIPTS = cast(Table, Receipt.__table__)


def do_acks(conn: Connection, rounds: list[Acks]) -> BatchResult[set[str]]:
    """Write rounds of acks (the write path's batch function); each round's outcome is the
    users it held back."""
    outcomes: list[set[str] | VoxboxError] = []
    envelopes: list[Envelope] = []
    for acks in rounds:
        held, logged = _write_acks(conn, acks)
        outcomes.append(held)
        envelopes.extend(logged)
    return BatchResult(outcomes, envelopes)


def _write_acks(conn: Connection, acks: Acks) -> tuple[set[str], list[Envelope]]:
    seqs = acks.seqs
    ranges = {
        uid: (acked, min(seqs[uid][1], last))
        for uid, acked, last in conn.execute(_ACK_STATE, {"ids": list(seqs)})
        if min(seqs[uid][1], last) > acked
    }
    if not ranges:
        return set(), []
    delivered = [
        (uid, MessageRef(mid, chat_id, sender_id))
        for uid, (lo, hi) in ranges.items()
        for mid, chat_id, sender_id in conn.execute(
            _MESSAGES_IN_RANGE, {"uid": uid, "lo": lo, "hi": hi}
        )
    ]
    held = _covering_group_messages(
        conn, [(uid, m) for uid, m in delivered if uid in acks.may_hold and m.sender_id != uid]
    )
    if held:
        ranges = {uid: r for uid, r in ranges.items() if uid not in held}
        delivered = [(uid, m) for uid, m in delivered if uid not in held]
        if not ranges:
            return held, []
    lock_user_rows(conn, {*ranges, *(m.sender_id for _, m in delivered)})
    conn.execute(_SET_ACKED, [{"uid": uid, "hi": hi} for uid, (_, hi) in ranges.items()])
    candidates = [(uid, m) for uid, m in delivered if m.sender_id != uid]
    if not candidates:
        return held, []
    now = utcnow()
    inserted = set(
        conn.execute(
            _INSERT_DELIVERED[conn.dialect.name],
            [{"message_id": m.id, "user_id": uid, "delivered_at": now} for uid, m in candidates],
        )
    )
    events = receipt_events(
        ((m, seqs[uid][0]) for uid, m in candidates if (m.id, uid) in inserted), "delivered", now
    )
    return held, append_events(conn, events)


def _covering_group_messages(
    conn: Connection, deliveries: Sequence[tuple[str, MessageRef]]
) -> set[str]:
    """The users among ``(user id, message)`` deliveries who got a message of a group."""
    chat_ids = {m.chat_id for _, m in deliveries}
    if not chat_ids:
        return set()
    groups = set(conn.scalars(_GROUPS_AMONG, {"ids": sorted(chat_ids)}))
    return {uid for uid, m in deliveries if m.chat_id in groups}


# The ack path's statements, built once (see core/events.py).
_ACK_STATE = select(USERS.c.id, USERS.c.acked_seq, USERS.c.last_seq).where(
    USERS.c.id.in_(bindparam("ids", expanding=True))
)
_MESSAGES_IN_RANGE = (
    select(MESSAGES.c.id, MESSAGES.c.chat_id, MESSAGES.c.sender_id)
    .join(EVENTS, MESSAGES.c.id == EVENTS.c.message_id)
    .where(
        EVENTS.c.user_id == bindparam("uid"),
        EVENTS.c.seq > bindparam("lo"),
        EVENTS.c.seq <= bindparam("hi"),
        EVENTS.c.type == "message.created",
    )
)
_GROUPS_AMONG = select(CHATS.c.id).where(
    CHATS.c.id.in_(bindparam("ids", expanding=True)), CHATS.c.kind == "group"
)
_SET_ACKED = (
    update(USERS)
    .where(USERS.c.id == bindparam("uid"), USERS.c.acked_seq < bindparam("hi"))
    .values(acked_seq=bindparam("hi"))
)
# INSERT ... ON CONFLICT DO NOTHING RETURNING, by dialect
_INSERT_DELIVERED = {
    name: dialect.insert(RECEIPTS)
    .on_conflict_do_nothing()
    .returning(RECEIPTS.c.message_id, RECEIPTS.c.user_id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


async def mark_read(b: Backends, user: Principal, chat_id: str, up_to: str) -> None:
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
        await log_events(
            session, receipt_events(((m, user.handle) for m in newly_read), "read", now)
        )
        await session.flush()
        # The reader's other devices update their unread counts.
        await log_event(session, [user.id], "chat.updated", await load_chat(session, user.id, chat))


async def _set_receipt(
    session: AsyncSession,
    user: Principal,
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


async def mark_played(b: Backends, user: Principal, message_id: str) -> None:
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
        await log_events(session, receipt_events(((m, user.handle) for m in played), "played", now))
        if played and message.view_once:
            # Opened once: from now on the player's views of it come without media.
            view = (await load_messages(session, [message], user.id))[0]
            await log_event(session, [user.id], "message.updated", view)


async def message_receipts(b: Backends, user: Principal, message_id: str) -> MessageReceiptsOut:
    """The sender's "Message info": every member the message was sent to (in the chat when it
    was posted, the sender aside, former members included), by handle, with when it was
    delivered to, read and played by them (``None``: not yet).

    Only the sender may ask: another member who sees the message gets Forbidden, anyone else
    NotFound (as for the message itself).
    """
    async with b.read() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        if message.sender_id != user.id:
            raise Forbidden("Only the sender of a message sees who received it.")
        rows = await session.execute(
            select(
                User.handle,
                User.display_name,
                Receipt.delivered_at,
                Receipt.read_at,
                Receipt.played_at,
            )
            .join(Member, Member.user_id == User.id)
            .outerjoin(Receipt, (Receipt.message_id == message.id) & (Receipt.user_id == User.id))
            .where(
                Member.chat_id == message.chat_id,
                Member.user_id != user.id,
                within_membership(message.id),
            )
            .order_by(User.handle)
        )
    return MessageReceiptsOut(
        receipts=[
            MessageReceiptOut(
                handle=handle,
                display_name=display_name,
                delivered_at=delivered_at,
                read_at=read_at,
                played_at=played_at,
            )
            for handle, display_name, delivered_at, read_at, played_at in rows.all()
        ]
    )
