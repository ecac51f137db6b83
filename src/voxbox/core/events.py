"""The per-user event log: append inside the writing transaction, published after commit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voxbox.core.views import (
    ChatOut,
    LogCheckOut,
    MediaOut,
    MemberRemovedOut,
    MessageOut,
    PresenceOut,
    ReceiptOut,
    SessionEndedOut,
)
from voxbox.db.engine import USER_LOCKS_AT
from voxbox.db.models import Event, User
from voxbox.db.queries import bind_value, insert_rows
from voxbox.events.bus import Envelope, EventBus
from voxbox.timeutil import utcnow

PENDING_ENVELOPES = "voxbox_pending_envelopes"
# Core statements on the tables: the hot path skips the ORM's unit of work.
USERS = cast(Table, User.__table__)
EVENTS = cast(Table, Event.__table__)

EventType = Literal[
    "message.created",
    "message.updated",
    "receipt",
    "chat.created",
    "chat.updated",
    "member.removed",
    "media.ready",
    "media.failed",
]
EphemeralType = Literal["presence", "session.ended", "log.check"]

# What each event's ``data`` is (API.md, "Events"). Logged events go through ``append_events``;
# ephemeral ones through ``publish_ephemeral``; both refuse data of another shape.
EVENT_SCHEMAS: dict[str, type[BaseModel]] = {
    "message.created": MessageOut,
    "message.updated": MessageOut,
    "receipt": ReceiptOut,
    "chat.created": ChatOut,
    "chat.updated": ChatOut,
    "member.removed": MemberRemovedOut,
    "media.ready": MediaOut,
    "media.failed": MediaOut,
    "presence": PresenceOut,
    "session.ended": SessionEndedOut,  # between workers only: sockets of the login close
    "log.check": LogCheckOut,  # between workers only: streams read the log now
}
LOGGED_TYPES: frozenset[str] = frozenset(get_args(EventType))


def _checked(type: str, data: BaseModel) -> str:
    """The event's data as JSON, once it is known to be of the type's schema."""
    schema = EVENT_SCHEMAS[type]
    if not isinstance(data, schema):
        raise TypeError(f"{type} carries {schema.__name__}, not {data.__class__.__name__}")
    return data.model_dump_json()


@dataclass(frozen=True)
class NewEvent:
    """One event for some users, to be logged by ``log_events``."""

    user_ids: Iterable[str]
    type: EventType
    data: BaseModel
    message_id: str | None = None


# The write path's statements are built once: building and cache-keying a statement costs more
# than SQLite takes to run it.
_USER_SEQS = (
    select(USERS.c.id, USERS.c.last_seq)
    .where(USERS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(USERS.c.id)
)
_LOCK_USER_SEQS = _USER_SEQS.with_for_update(key_share=True)
_SET_LAST_SEQ = (
    update(USERS).where(USERS.c.id == bindparam("uid")).values(last_seq=bindparam("seq"))
)
# an event for each member of a group: inserted through the driver (db/queries.insert_rows)
_EVENT_COLUMNS = ("user_id", "seq", "type", "data", "message_id", "created_at")


def lock_user_rows(conn: Connection, user_ids: Iterable[str]) -> dict[str, int]:
    """Lock users' rows (their event seqs) in id order, before anything else in a transaction;
    returns each one's last seq.

    A transaction that logs events for several users takes every lock it needs at once and in
    one order, so two transactions never wait for each other. ``FOR NO KEY UPDATE`` does not
    conflict with the ``KEY SHARE`` locks foreign-key inserts take. SQLite needs none (one
    writer at a time).
    """
    sqlite = conn.dialect.name == "sqlite"
    rows = conn.execute(_USER_SEQS if sqlite else _LOCK_USER_SEQS, {"ids": sorted(set(user_ids))})
    seqs = {uid: int(seq) for uid, seq in rows}
    if not sqlite:
        conn.info.setdefault(USER_LOCKS_AT, time.perf_counter())  # see Database.run_write
    return seqs


def append_events(conn: Connection, events: Sequence[NewEvent]) -> list[Envelope]:
    """Append events to users' logs, in the given order per user; returns the envelopes to
    publish once the transaction has committed.

    Seqs are allocated by reading the users' ``last_seq`` under their row locks and setting it
    once per user for the whole batch. This is the one implementation: the batched writer calls
    it on its connection, ``log_events`` on a session's.
    """
    per_event = [(sorted(set(e.user_ids)), e) for e in events]
    counts: Counter[str] = Counter(uid for uids, _ in per_event for uid in uids)
    if not counts:
        return []
    next_seq = {uid: last + 1 for uid, last in lock_user_rows(conn, counts).items()}
    now = bind_value(conn, EVENTS.c.created_at, utcnow())
    rows: list[tuple[Any, ...]] = []
    envelopes = []
    for uids, event in per_event:
        payload = _checked(event.type, event.data)
        seqs = []
        for uid in uids:
            seq = next_seq[uid]
            next_seq[uid] = seq + 1
            seqs.append((uid, seq))
            rows.append((uid, seq, event.type, payload, event.message_id, now))
        envelopes.append(Envelope(event.type, payload, tuple(seqs)))
    conn.execute(_SET_LAST_SEQ, [{"uid": uid, "seq": seq - 1} for uid, seq in next_seq.items()])
    insert_rows(conn, EVENTS, _EVENT_COLUMNS, rows)
    return envelopes


async def lock_users(session: AsyncSession, user_ids: Iterable[str]) -> None:
    """``lock_user_rows`` inside a session's transaction."""
    await session.run_sync(_lock_in_session, list(user_ids))


def _lock_in_session(session: Session, user_ids: list[str]) -> None:
    session.flush()
    lock_user_rows(session.connection(), user_ids)


async def log_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """Append events inside a session's write transaction (Backends.transaction), which
    publishes them after commit."""
    if not events:
        return
    envelopes = await session.run_sync(_append_in_session, events)
    session.info.setdefault(PENDING_ENVELOPES, []).extend(envelopes)


def _append_in_session(session: Session, events: Sequence[NewEvent]) -> list[Envelope]:
    session.flush()  # the changes events describe come first (and take their locks first)
    return append_events(session.connection(), events)


async def log_event(
    session: AsyncSession,
    user_ids: Iterable[str],
    type: EventType,
    data: BaseModel,
    *,
    message_id: str | None = None,
) -> None:
    """Append one event to each user's log (see ``log_events``)."""
    await log_events(session, [NewEvent(user_ids, type, data, message_id)])


async def publish_ephemeral(
    bus: EventBus, user_ids: Sequence[str], type: EphemeralType, data: BaseModel
) -> None:
    """Send an event that is not logged (presence) to users' live connections."""
    if user_ids:
        await bus.publish(Envelope(type, _checked(type, data), tuple((u, None) for u in user_ids)))


async def events_after(
    session: AsyncSession, user_id: str, after: int, limit: int, upto: int | None = None
) -> list[tuple[int, str]]:
    """Logged events of a user with seq > after (and <= upto), oldest first, as (seq, frame)."""
    query = select(Event.seq, Event.type, Event.data).where(
        Event.user_id == user_id, Event.seq > after
    )
    if upto is not None:
        query = query.where(Event.seq <= upto)
    rows = await session.execute(query.order_by(Event.seq).limit(limit))
    return [(seq, Envelope(type, data, ()).frame(seq)) for seq, type, data in rows.all()]


async def latest_seq(session: AsyncSession, user_id: str) -> int:
    seq = await session.scalar(select(User.last_seq).where(User.id == user_id))
    return int(seq or 0)
