"""Live event streams (WebSocket and long-poll) and presence.

A stream replays the user's log after the client's seq, then forwards live events from the bus.
Live events are checked against the last seq sent: duplicates are dropped and a gap (the bus
reordered or dropped something) is filled from the log, so the client gets every logged event
exactly once, in order.

The bus is not trusted to bring everything: a worker may die between its commit and its
publish, and a Redis connection may drop. So every ``limits.heartbeat_seconds`` the process's
``LogWatch`` reads, in one query, the latest seq of every user with a stream here, and the
streams of users whose log is past what their streams have seen read it; every WebSocket also
gets a ``heartbeat`` frame with the seq it has sent up to. A stream also reads its log at once
on a ``log.check`` (a retried send that found its message committed) or when the bus
reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

from voxbox.core.access import access_chat, active_member_ids, check_active
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid
from voxbox.core.events import events_after, latest_seq, latest_seqs, publish_ephemeral
from voxbox.core.principal import Principal
from voxbox.core.tokens import token_hash
from voxbox.core.views import PresenceOut, SessionEndedOut
from voxbox.events.bus import LOG_CHECK_FRAME, Subscription

log = logging.getLogger(__name__)

REPLAY_PAGE = 1000
WATCH_PAGE = 1000  # users per query of the LogWatch
# The highest position (seq) a client may resume from or ack. JavaScript numbers hold integers
# exactly up to 2^53, and the web app starts a new device at 2^53 - 1; anything higher is not a
# position at all (and would overflow the database's 64-bit integers).
MAX_POSITION = 2**53


_SESSION_ENDED = '{"type":"session.ended"'  # how Envelope.frame starts that event's frame


class SessionEnded(Exception):
    """The login this stream authenticated with was logged out: close it (4401)."""


class StreamOverflow(Exception):
    """The client fell too far behind; it should reconnect and resume from its last seq."""


def check_position(seq: int) -> int:
    """``seq`` as a position in a user's log: a negative one means 0 (the log's start); one
    above MAX_POSITION is Invalid (422)."""
    if seq > MAX_POSITION:
        raise Invalid(f"A position (seq) is at most 2^53 ({MAX_POSITION}).")
    return max(0, seq)


class EventStream:
    def __init__(
        self,
        b: Backends,
        sub: Subscription,
        after: int,
        token_hash: str | None = None,
        beats: bool = True,
    ) -> None:
        self._b = b
        self._sub = sub
        self._last_seq = 0
        self.last_seq = after  # the subscription has seen it too (see LogWatch)
        self._token_hash = token_hash
        self._beats = beats  # heartbeat frames (WebSocket); a long-poll only catches up
        self._every = b.settings.limits.heartbeat_seconds
        self._next_beat = asyncio.get_running_loop().time() + self._every

    @property
    def last_seq(self) -> int:
        """The seq the stream has sent up to."""
        return self._last_seq

    @last_seq.setter
    def last_seq(self, seq: int) -> None:
        self._last_seq = seq
        self._sub.seen = max(self._sub.seen, seq)

    async def replay(self) -> AsyncIterator[list[str]]:
        """Pages of logged frames after the client's seq, up to now."""
        while True:
            async with self._b.read() as session:
                page = await events_after(session, self._sub.user_id, self.last_seq, REPLAY_PAGE)
            if page:
                self.last_seq = page[-1][0]
                yield [frame for _, frame in page]
            if len(page) < REPLAY_PAGE:
                return

    async def reset_if_past_end(self) -> bool:
        """A client whose seq is past the end of the log (the server was restored or reset)
        starts again at the log's end; True when that happened, so it drops its state."""
        async with self._b.read() as session:
            latest = await latest_seq(session, self._sub.user_id)
        if self.last_seq <= latest:
            return False
        self.last_seq = self._sub.seen = latest
        return True

    async def next_frames(self) -> list[str]:
        """Wait for live events, or the heartbeat; return the frames to send (never empty)."""
        loop = asyncio.get_running_loop()
        while True:
            if self._sub.overflowed:
                raise StreamOverflow
            if self._sub.queue.empty():
                try:
                    async with asyncio.timeout_at(self._next_beat):
                        seq, frame = await self._sub.queue.get()
                except TimeoutError:  # the LogWatch reads the log for it when it is behind
                    self._next_beat = loop.time() + self._every
                    if self._beats:
                        return [json.dumps({"type": "heartbeat", "seq": self.last_seq})]
                    continue
            else:
                seq, frame = self._sub.queue.get_nowait()
            frames = await self._accept(seq, frame)
            while not self._sub.queue.empty():  # send what is already waiting in one go
                frames += await self._accept(*self._sub.queue.get_nowait())
            if frames:
                return frames

    async def _catch_up(self) -> list[str]:
        """What the log holds past the last seq sent (at most a page; the rest at once next)."""
        async with self._b.read() as session:
            missed = await events_after(session, self._sub.user_id, self.last_seq, REPLAY_PAGE)
        if len(missed) == REPLAY_PAGE:  # read on right after sending this page
            self._sub.offer(None, LOG_CHECK_FRAME)
        # Seen up to here now, even if nothing was missed: the LogWatch has no more to ask.
        self.last_seq = missed[-1][0] if missed else self.last_seq
        return [frame for _, frame in missed]

    async def _accept(self, seq: int | None, frame: str) -> list[str]:
        if seq is None:
            if frame == LOG_CHECK_FRAME:  # from the bus, or a retried send (log.check)
                return await self._catch_up()
            if frame.startswith(_SESSION_ENDED):
                ended = SessionEndedOut.model_validate(json.loads(frame)["data"])
                if ended.everywhere or ended.token == self._token_hash:
                    raise SessionEnded
                return []  # another login of the user: not this stream's business
            return [frame]
        if seq <= self.last_seq:
            return []
        if seq == self.last_seq + 1:
            self.last_seq = seq
            return [frame]
        async with self._b.read() as session:  # events are published after commit: all there
            missed = await events_after(
                session, self._sub.user_id, self.last_seq, seq - self.last_seq, upto=seq
            )
        self.last_seq = seq
        return [f for _, f in missed]


class LogWatch:
    """The backstop of live delivery, for the whole process: every heartbeat, one query per
    ``WATCH_PAGE`` users reads the latest seq of every user with a stream here; the streams of
    those whose log is past what the bus brought them read it (``check_logs``). So a committed
    event reaches an open socket within a heartbeat whatever the bus lost, at the cost of one
    query per heartbeat, not one per socket."""

    def __init__(self, b: Backends) -> None:
        self._b = b
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._b.settings.limits.heartbeat_seconds)
            try:
                await self.check()
            except Exception:
                log.exception("reading the latest seqs of this process's streams failed")

    async def check(self) -> None:
        seen = self._b.bus.seen_seqs()
        users = list(seen)
        behind: set[str] = set()
        for start in range(0, len(users), WATCH_PAGE):
            async with self._b.read() as session:
                latest = await latest_seqs(session, users[start : start + WATCH_PAGE])
            behind.update(uid for uid, seq in latest.items() if seq > seen[uid])
        if behind:
            self._b.bus.check_logs(behind)


@asynccontextmanager
async def open_stream(
    b: Backends, user: Principal, after: int, token: str | None = None, beats: bool = True
) -> AsyncIterator[EventStream]:
    """Subscribe first, then replay: nothing committed in between can slip through.

    ``after`` is checked with ``check_position`` (Invalid above 2^53). With ``token`` (the
    login it authenticated with), the stream ends (``SessionEnded``) when that login does."""
    after = check_position(after)
    sub = b.bus.subscribe(user.id, b.settings.limits.websocket_queue)
    try:
        yield EventStream(b, sub, after, token_hash(token) if token is not None else None, beats)
    finally:
        b.bus.unsubscribe(sub)


async def poll(
    b: Backends,
    user: Principal,
    after: int,
    timeout: float,
    ack: Callable[[int], None] | None = None,
) -> tuple[list[str], int, bool]:
    """Long-poll: events after ``after`` now, or the first to arrive within ``timeout`` seconds.

    Returns (frames, seq, reset); ``reset`` when ``after`` was past the end of the log: then
    there are no frames and ``seq`` is the log's end, to start again from. Otherwise ``ack``
    (if given) is called with ``after`` at once: the client has handled the events up to it.
    ``after`` above 2^53 is Invalid (422).
    """
    after = check_position(after)
    timeout = min(max(timeout, 0.0), b.settings.limits.longpoll_max_seconds)
    async with open_stream(b, user, after, beats=False) as stream:
        if await stream.reset_if_past_end():
            return [], stream.last_seq, True
        if ack is not None and after > 0:
            ack(after)
        async for page in stream.replay():
            return page, stream.last_seq, False
        try:
            frames = await asyncio.wait_for(stream.next_frames(), timeout)
        except (TimeoutError, StreamOverflow):
            frames = []
        return frames, stream.last_seq, False


async def set_presence(
    b: Backends, user: Principal, chat_id: str, state: Literal["typing", "recording", "idle"]
) -> None:
    """Tell the chat's other members what the user is doing now. Not logged."""
    async with b.read() as session:
        _, member = await access_chat(session, user.id, chat_id)
        check_active(member)
        recipients = [u for u in await active_member_ids(session, chat_id) if u != user.id]
    await publish_ephemeral(
        b.bus, recipients, "presence", PresenceOut(chat_id=chat_id, handle=user.handle, state=state)
    )
