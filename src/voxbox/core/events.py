"""The per-user event log: append inside the writing transaction, published after commit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from pydantic import BaseModel
from sqlalchemy import Connection, Table, bindparam, select, text, update
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
# PostgreSQL's whole append: lock the users in id order, advance their seqs, insert the events
# numbered from the seqs found under the locks.
_APPEND_LOCKED = text("""
WITH wanted AS (
    SELECT id, n FROM unnest(CAST(:uids AS varchar[]), CAST(:counts AS integer[])) AS w(id, n)
), locked AS (
    SELECT users.id, users.last_seq, wanted.n FROM users JOIN wanted ON wanted.id = users.id
     ORDER BY users.id
       FOR NO KEY UPDATE OF users
), advanced AS (
    UPDATE users SET last_seq = locked.last_seq + locked.n FROM locked
     WHERE users.id = locked.id
    RETURNING users.id, locked.last_seq AS base
)
INSERT INTO events (user_id, seq, type, data, message_id, created_at)
SELECT e.user_id, advanced.base + e.place, e.type, e.data, e.message_id, :now
  FROM unnest(CAST(:e_users AS varchar[]), CAST(:e_places AS integer[]),
              CAST(:e_types AS varchar[]), CAST(:e_data AS text[]),
              CAST(:e_messages AS varchar[])) AS e(user_id, place, type, data, message_id)
  JOIN advanced ON advanced.id = e.user_id
RETURNING user_id, seq
""").bindparams(bindparam("now", type_=EVENTS.c.created_at.type))


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

    Each user's events take the next seqs after its ``last_seq``, which is advanced once per
    user for the whole batch. This is the one implementation: the batched writer calls it on its
    connection, ``log_events`` on a session's. Call it last in a transaction: on PostgreSQL it
    locks the users' rows (in id order, ``FOR NO KEY UPDATE``, which does not conflict with the
    ``KEY SHARE`` locks of foreign-key inserts), advances their seqs and inserts the events in
    one statement, so a hot recipient's row is held for that statement and the commit only.
    """
    per_event = [(sorted(set(e.user_ids)), e) for e in events]
    counts: Counter[str] = Counter(uid for uids, _ in per_event for uid in uids)
    if not counts:
        return []
    # Each event's place in its users' runs: 1 for a user's first event of the batch, 2 ...
    placed: Counter[str] = Counter()
    rows: list[tuple[str, int, str, str, str | None]] = []
    events_out: list[tuple[str, str, list[tuple[str, int]]]] = []
    for uids, event in per_event:
        payload = _checked(event.type, event.data)
        places = []
        for uid in uids:
            placed[uid] += 1
            places.append((uid, placed[uid]))
            rows.append((uid, placed[uid], event.type, payload, event.message_id))
        events_out.append((event.type, payload, places))
    if conn.dialect.name == "postgresql":
        before = _append_locked(conn, counts, rows)
    else:  # SQLite: one writer at a time, nothing to lock
        before = lock_user_rows(conn, counts)
        now = bind_value(conn, EVENTS.c.created_at, utcnow())
        conn.execute(_SET_LAST_SEQ, [{"uid": u, "seq": before[u] + n} for u, n in counts.items()])
        insert_rows(
            conn,
            EVENTS,
            _EVENT_COLUMNS,
            [(uid, before[uid] + place, *rest, now) for uid, place, *rest in rows],
        )
    return [
        Envelope(type, payload, tuple((uid, before[uid] + place) for uid, place in places))
        for type, payload, places in events_out
    ]


def _append_locked(
    conn: Connection, counts: Counter[str], rows: list[tuple[str, int, str, str, str | None]]
) -> dict[str, int]:
    """PostgreSQL: lock, advance and insert in one statement; each user's seq before it."""
    users, places, types, payloads, message_ids = zip(*rows, strict=True)
    inserted = conn.execute(
        _APPEND_LOCKED,
        {
            "uids": list(counts),
            "counts": list(counts.values()),
            "e_users": list(users),
            "e_places": list(places),
            "e_types": list(types),
            "e_data": list(payloads),
            "e_messages": list(message_ids),
            "now": utcnow(),
        },
    )
    before: dict[str, int] = {}
    for uid, seq in inserted:
        before[uid] = min(before.get(uid, seq), seq)
    conn.info.setdefault(USER_LOCKS_AT, time.perf_counter())  # see Database.run_write
    return {uid: first - 1 for uid, first in before.items()}


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
    return (await latest_seqs(session, [user_id])).get(user_id, 0)


async def latest_seqs(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, int]:
    """``latest_seq`` of several users at once (those that exist)."""
    rows = await session.execute(select(User.id, User.last_seq).where(User.id.in_(user_ids)))
    return {uid: int(seq or 0) for uid, seq in rows.all()}
