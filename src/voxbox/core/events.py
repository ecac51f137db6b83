"""The per-user event log: append inside the writing transaction, published after commit."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.db.models import Event, User
from voxbox.db.queries import dialect_name
from voxbox.events.bus import Envelope, EventBus
from voxbox.timeutil import utcnow

PENDING_ENVELOPES = "voxbox_pending_envelopes"
# Core statements on the tables: the hot path skips the ORM's unit of work.
USERS = cast(Table, User.__table__)
EVENTS = cast(Table, Event.__table__)

LOGGED_TYPES = frozenset(
    {
        "message.created",
        "message.updated",
        "receipt",
        "chat.created",
        "chat.updated",
        "member.removed",
        "media.ready",
        "media.failed",
    }
)


def encode(data: BaseModel | dict[str, Any]) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json()
    return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True)
class NewEvent:
    """One event for some users, to be logged by ``log_events``."""

    user_ids: Iterable[str]
    type: str
    data: BaseModel | dict[str, Any]
    message_id: str | None = None


async def lock_users(session: AsyncSession, user_ids: Iterable[str]) -> None:
    """Lock users' rows (their event seqs) in id order, before anything else in a transaction.

    A transaction that logs events for several users takes every lock it needs at once and in
    one order, so two transactions never wait for each other. ``FOR NO KEY UPDATE`` does not
    conflict with the ``KEY SHARE`` locks foreign-key inserts take. SQLite needs none (one
    writer at a time).
    """
    if dialect_name(session) != "sqlite":
        await session.execute(
            select(User.id)
            .where(User.id.in_(sorted(set(user_ids))))
            .order_by(User.id)
            .with_for_update(key_share=True)
        )


async def log_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """Append events to users' logs, in the given order per user, in two statements.

    Runs inside a write transaction (Backends.transaction), which publishes them after commit.
    Seqs are allocated by bumping ``users.last_seq`` once per user for the whole batch.
    """
    per_event = [(sorted(set(e.user_ids)), e) for e in events]
    counts: Counter[str] = Counter(uid for uids, _ in per_event for uid in uids)
    if not counts:
        return
    await lock_users(session, counts)
    bump = case(*((User.id == uid, n) for uid, n in counts.items()), else_=0)
    rows = await session.execute(
        update(USERS)
        .where(User.id.in_(list(counts)))
        .values(last_seq=User.last_seq + bump)
        .returning(User.id, User.last_seq)
    )
    next_seq = {uid: int(last) - counts[uid] + 1 for uid, last in rows.all()}
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    pending = session.info.setdefault(PENDING_ENVELOPES, [])
    for uids, event in per_event:
        assert event.type in LOGGED_TYPES, event.type
        payload = encode(event.data)
        seqs = []
        for uid in uids:
            seq = next_seq[uid]
            next_seq[uid] = seq + 1
            seqs.append((uid, seq))
            inserts.append(
                {
                    "user_id": uid,
                    "seq": seq,
                    "type": event.type,
                    "data": payload,
                    "message_id": event.message_id,
                    "created_at": now,
                }
            )
        pending.append(Envelope(event.type, payload, tuple(seqs)))
    await session.execute(insert(EVENTS), inserts)


async def log_event(
    session: AsyncSession,
    user_ids: Iterable[str],
    type: str,
    data: BaseModel | dict[str, Any],
    *,
    message_id: str | None = None,
) -> None:
    """Append one event to each user's log (see ``log_events``)."""
    await log_events(session, [NewEvent(user_ids, type, data, message_id)])


async def publish_ephemeral(
    bus: EventBus, user_ids: Sequence[str], type: str, data: BaseModel | dict[str, Any]
) -> None:
    """Send an event that is not logged (presence) to users' live connections."""
    if user_ids:
        await bus.publish(Envelope(type, encode(data), tuple((u, None) for u in user_ids)))


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
