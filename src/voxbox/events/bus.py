"""EventBus: publish events to users' live connections, in this process or through Redis.

The durable per-user event log lives in the database; the bus only carries what was committed
to whichever process holds a user's sockets. A subscriber that falls behind or sees a gap fills
it from the log, so the bus may drop or reorder without anyone missing an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from voxbox.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    """One event for several users. ``seqs`` pairs each user with its log seq (None: ephemeral)."""

    type: str
    data: str  # JSON text, encoded once for every recipient
    seqs: tuple[tuple[str, int | None], ...]

    def frame(self, seq: int | None) -> str:
        if seq is None:
            return f'{{"type":{json.dumps(self.type)},"data":{self.data}}}'
        return f'{{"seq":{seq},"type":{json.dumps(self.type)},"data":{self.data}}}'

    def encode(self) -> str:
        return json.dumps({"t": self.type, "s": self.seqs}) + "\n" + self.data

    @classmethod
    def decode(cls, raw: str) -> Envelope:
        head, data = raw.split("\n", 1)
        meta = json.loads(head)
        return cls(meta["t"], data, tuple((u, s) for u, s in meta["s"]))


@dataclass(eq=False)
class Subscription:
    """A live connection's inbox: frames as (seq or None, text). Overflow ends the stream."""

    user_id: str
    maxsize: int
    queue: asyncio.Queue[tuple[int | None, str]] = field(init=False)
    overflowed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)

    def offer(self, seq: int | None, frame: str) -> None:
        try:
            self.queue.put_nowait((seq, frame))
        except asyncio.QueueFull:
            # The client resumes from its last seq on reconnect; better than unbounded memory.
            self.overflowed = True


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, envelope: Envelope) -> None: ...
    def subscribe(self, user_id: str, maxsize: int) -> Subscription: ...
    def unsubscribe(self, sub: Subscription) -> None: ...


# Tells every stream to read its user's log now (core/realtime.py): after the bus reconnects,
# events published meanwhile were lost to this process.
LOG_CHECK_FRAME = Envelope("log.check", "{}", ()).frame(None)


class _LocalSubscribers:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def check_logs(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.offer(None, LOG_CHECK_FRAME)

    def subscribe(self, user_id: str, maxsize: int) -> Subscription:
        sub = Subscription(user_id, maxsize)
        self._subs[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]

    def dispatch(self, envelope: Envelope) -> None:
        for user_id, seq in envelope.seqs:
            subs = self._subs.get(user_id)
            if subs:
                frame = envelope.frame(seq)
                for sub in subs:
                    sub.offer(seq, frame)


class InProcessBus(_LocalSubscribers):
    """The default: one process holds every socket."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, envelope: Envelope) -> None:
        EVENTS_PUBLISHED.labels(envelope.type).inc(len(envelope.seqs))
        self.dispatch(envelope)


class RedisBus(_LocalSubscribers):
    """Scale-out: every process publishes to one Redis channel and dispatches to its own sockets."""

    channel = "voxbox:events"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="redis-bus-listener")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()

    async def publish(self, envelope: Envelope) -> None:
        EVENTS_PUBLISHED.labels(envelope.type).inc(len(envelope.seqs))
        await self._redis.publish(self.channel, envelope.encode())

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    self.check_logs()  # whatever was published while we were not listening
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.dispatch(Envelope.decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Subscribers notice gaps by seq and read them from the log; keep listening.
                log.exception("redis bus listener failed; reconnecting")
                await asyncio.sleep(1)


def make_bus(redis_url: str | None) -> EventBus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
