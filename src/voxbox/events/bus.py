"""EventBus: publish events to users' live connections, in this process or through Redis.

The durable per-user event log lives in the database; the bus only carries what was committed
to whichever process holds a user's sockets. A subscriber that falls behind or sees a gap fills
it from the log, so the bus may drop or reorder without anyone missing an event.

Through Redis, users are spread over ``SHARDS`` channels, ``{prefix}:events:{shard}``, under
the deployment's prefix (``VOXBOX_REDIS_PREFIX``): an event goes to the shards of its recipients
only, and a worker listens to the shards of the users whose sockets it holds, so two
deployments on one Redis never see each other's events, and no worker decodes every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    """A live connection's inbox: frames as (seq or None, text). Overflow ends the stream.

    ``seen`` is the highest seq it was offered or its stream read from the log: a user whose
    log is past it has an event the bus did not bring (see ``seen_seqs``)."""

    user_id: str
    maxsize: int
    queue: asyncio.Queue[tuple[int | None, str]] = field(init=False)
    overflowed: bool = False
    seen: int = 0

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)

    def offer(self, seq: int | None, frame: str) -> None:
        if seq is not None and seq > self.seen:
            self.seen = seq
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
    def seen_seqs(self) -> dict[str, int]: ...
    def check_logs(self, user_ids: set[str] | None = None) -> None: ...
    async def broadcast(self, message: str) -> None:
        """Tell every process of the deployment (this one too): its ``on_broadcast`` handlers."""

    def on_broadcast(self, handler: Callable[[str], None]) -> None: ...


# Tells every stream to read its user's log now (core/realtime.py): after the bus reconnects,
# events published meanwhile were lost to this process.
LOG_CHECK_FRAME = Envelope("log.check", "{}", ()).frame(None)


class _LocalSubscribers:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._broadcast_handlers: list[Callable[[str], None]] = []

    def on_broadcast(self, handler: Callable[[str], None]) -> None:
        self._broadcast_handlers.append(handler)

    def _handle_broadcast(self, message: str) -> None:
        for handler in self._broadcast_handlers:
            try:
                handler(message)
            except Exception:
                log.exception("a broadcast handler failed on %r", message[:200])

    def check_logs(self, user_ids: set[str] | None = None) -> None:
        """Tell these users' streams (all, by default) to read their logs now."""
        for user_id, subs in list(self._subs.items()):
            if user_ids is None or user_id in user_ids:
                for sub in subs:
                    sub.offer(None, LOG_CHECK_FRAME)

    def seen_seqs(self) -> dict[str, int]:
        """Each user with a subscription here: the highest seq all of them have seen."""
        return {user_id: min(sub.seen for sub in subs) for user_id, subs in self._subs.items()}

    def subscribe(self, user_id: str, maxsize: int) -> Subscription:
        sub = Subscription(user_id, maxsize)
        if user_id not in self._subs:
            self._first_subscriber(user_id)
        self._subs[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]
                self._last_subscriber_gone(sub.user_id)

    def _first_subscriber(self, user_id: str) -> None:
        """This process now holds a socket of the user."""

    def _last_subscriber_gone(self, user_id: str) -> None:
        """This process holds no socket of the user any more."""

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

    async def broadcast(self, message: str) -> None:
        self._handle_broadcast(message)

    async def close(self) -> None:
        pass

    async def publish(self, envelope: Envelope) -> None:
        EVENTS_PUBLISHED.labels(envelope.type).inc(len(envelope.seqs))
        self.dispatch(envelope)


SHARDS = 64  # every worker of a deployment must agree: not a setting


def shard_of(user_id: str) -> int:
    return zlib.crc32(user_id.encode()) % SHARDS


class RedisBus(_LocalSubscribers):
    """Scale-out: events go through Redis, on the channels of their recipients' shards."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._control = f"{prefix}:control"  # broadcasts; always subscribed
        self._origin = uuid.uuid4().hex  # this process, which handled its broadcasts already
        self._users_in_shard: Counter[int] = Counter()  # of users with a socket here
        self._listening: set[int] = set()
        self._changed = asyncio.Event()
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    def channel(self, shard: int) -> str:
        return f"{self._prefix}:events:{shard}"

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-bus-listener"),
            asyncio.create_task(self._follow_sockets(), name="redis-bus-subscriptions"),
        ]
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    async def publish(self, envelope: Envelope) -> None:
        EVENTS_PUBLISHED.labels(envelope.type).inc(len(envelope.seqs))
        by_shard: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
        for user_id, seq in envelope.seqs:
            by_shard[shard_of(user_id)].append((user_id, seq))
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard, seqs in by_shard.items():
                part = Envelope(envelope.type, envelope.data, tuple(seqs))
                pipe.publish(self.channel(shard), part.encode())
            await pipe.execute()

    async def broadcast(self, message: str) -> None:
        self._handle_broadcast(message)  # here at once, the other workers through Redis
        await self._redis.publish(self._control, f"{self._origin}\n{message}")

    def _first_subscriber(self, user_id: str) -> None:
        shard = shard_of(user_id)
        self._users_in_shard[shard] += 1
        if self._users_in_shard[shard] == 1:
            self._changed.set()

    def _last_subscriber_gone(self, user_id: str) -> None:
        shard = shard_of(user_id)
        self._users_in_shard[shard] -= 1
        if self._users_in_shard[shard] <= 0:
            del self._users_in_shard[shard]
            self._changed.set()

    async def _follow_sockets(self) -> None:
        """Listen to exactly the shards of the users with sockets here."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # the listener subscribes to what is wanted when it connects
            wanted = set(self._users_in_shard)
            try:
                if added := wanted - self._listening:
                    await pubsub.subscribe(*(self.channel(s) for s in added))
                if removed := self._listening - wanted:
                    await pubsub.unsubscribe(*(self.channel(s) for s in removed))
                self._listening = wanted
            except Exception:
                log.exception("redis bus: (un)subscribing failed; the listener reconnects")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    self._listening = set(self._users_in_shard)
                    channels = [self.channel(s) for s in self._listening]
                    await pubsub.subscribe(self._control, *channels)
                    self._pubsub = pubsub
                    self._changed.set()  # sockets that came or went while connecting
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Streams read the log when their shard is subscribed again; keep listening.
                log.exception("redis bus listener failed; reconnecting")
            finally:
                self._pubsub = None
            await asyncio.sleep(1)

    def _receive(self, message: dict[str, Any]) -> None:
        if message["type"] == "message" and message["channel"] == self._control:
            origin, _, text = message["data"].partition("\n")
            if origin != self._origin:
                self._handle_broadcast(text)
        elif message["type"] == "message":
            self.dispatch(Envelope.decode(message["data"]))
        elif message["type"] == "subscribe" and message["channel"] != self._control:
            # Events published before this moment never reached us here (a new shard, or the
            # connection came back): the streams of the shard's users read their logs.
            shard = int(message["channel"].rsplit(":", 1)[1])
            self.check_logs({u for u in self._subs if shard_of(u) == shard})


def make_bus(redis_url: str | None, prefix: str = "voxbox") -> EventBus:
    return RedisBus(redis_url, prefix) if redis_url else InProcessBus()
