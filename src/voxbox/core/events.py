"""The per-user event log: append inside the writing transaction, published after commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.db.models import Event, User
from voxbox.db.queries import dialect_name
from voxbox.events.bus import Envelope, EventBus
from voxbox.timeutil import utcnow

PENDING_ENVELOPES = "voxbox_pending_envelopes"

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


async def log_event(
    session: AsyncSession,
    user_ids: Iterable[str],
    type: str,
    data: BaseModel | dict[str, Any],
    *,
    message_id: str | None = None,
) -> None:
    """Append one event to each user's log.

    Runs inside a write transaction (Backends.transaction), which publishes it after commit.
    Seqs are allocated by bumping ``users.last_seq``; rows are locked in id order so two
    transactions fanning out to overlapping users cannot deadlock.
    """
    assert type in LOGGED_TYPES, type
    uids = sorted(set(user_ids))
    if not uids:
        return
    if dialect_name(session) != "sqlite":
        await session.execute(
            select(User.id).where(User.id.in_(uids)).order_by(User.id).with_for_update()
        )
    rows = await session.execute(
        update(User)
        .where(User.id.in_(uids))
        .values(last_seq=User.last_seq + 1)
        .returning(User.id, User.last_seq),
        execution_options={"synchronize_session": False},
    )
    seqs = tuple((uid, int(seq)) for uid, seq in rows.all())
    payload = encode(data)
    now = utcnow()
    await session.execute(
        insert(Event),
        [
            {
                "user_id": uid,
                "seq": seq,
                "type": type,
                "data": payload,
                "message_id": message_id,
                "created_at": now,
            }
            for uid, seq in seqs
        ],
    )
    session.info.setdefault(PENDING_ENVELOPES, []).append(Envelope(type, payload, seqs))


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
