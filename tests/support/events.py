"""A test client of the events WebSocket (`/api/v1/events`).

    async with EventStream(server.ws_url, token, after=0) as ev:
        ev.replayed          # logged events with seq > after, in the order the server sent them
        ev.ready_seq         # the seq in {"type": "ready", "seq": N}
        msg = await ev.next_event("message.created", where=lambda e: e["data"]["id"] == mid)

Every frame after `ready` lands in a buffer; `next_event` takes the first buffered frame that
matches (leaving the others for later calls) or waits for one, up to `timeout` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxbox.core.events import EVENT_SCHEMAS

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class EventStreamClosed(AssertionError):
    pass


def check_schema(frame: Event) -> None:
    """Every event a test receives has exactly the fields of its type's schema (the server's
    event registry, ``voxbox.core.events.EVENT_SCHEMAS``)."""
    schema = EVENT_SCHEMAS.get(frame.get("type", ""))
    if schema is None:  # ready, error, pong: control frames
        return
    data = frame["data"]
    assert schema.model_validate(data).model_dump(mode="json") == data, frame


class EventStream:
    def __init__(self, ws_url: str, token: str | None, after: int = 0) -> None:
        self.ws_url = ws_url
        self.token = token
        self.after = after
        self.replayed: list[Event] = []
        self.ready_seq: int | None = None
        self.ready_reset = False
        self.received: list[Event] = []  # every frame after ready, consumed or not
        self.heartbeats: list[Event] = []  # kept apart: no test of events sees them
        self._buffer: list[Event] = []
        self._arrived = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.close_reason: str | None = None
        self.close_code: int | None = None

    # --- connection ----------------------------------------------------------------------------
    async def __aenter__(self) -> EventStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self, timeout: float = 10.0) -> None:
        """Connect, authenticate, resume after `self.after`, read the replay up to `ready`."""
        self._ws = await connect(self.ws_url, open_timeout=timeout, max_size=2**24)
        if self.token is not None:
            await self.send({"type": "auth", "token": self.token})
        await self.send({"type": "resume", "after": self.after})
        early: list[Event] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._recv_raw()
                if frame.get("type") == "ready":
                    self.ready_seq = frame.get("seq")
                    self.ready_reset = frame.get("reset") is True
                    break
                if frame.get("type") == "error":
                    raise EventStreamClosed(f"server sent an error instead of ready: {frame}")
                if "seq" in frame:
                    self.replayed.append(frame)
                else:  # ephemeral (presence) while replaying: keep it for next_event
                    early.append(frame)
        self._buffer.extend(early)
        self.received.extend(early)
        self._reader = asyncio.create_task(self._read_forever())

    async def _recv_raw(self) -> Event:
        assert self._ws is not None
        try:
            raw = await self._ws.recv()
        except ConnectionClosed as e:
            raise EventStreamClosed(f"events socket closed: {e!r}") from e
        frame = json.loads(raw)
        assert isinstance(frame, dict), f"event frame is not an object: {raw!r}"
        check_schema(frame)
        return frame

    async def _read_forever(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                frame = json.loads(raw)
                check_schema(frame)
                if frame.get("type") == "heartbeat":  # the transport's, not an event
                    self.heartbeats.append(frame)
                    self._arrived.set()
                    continue
                self.received.append(frame)
                self._buffer.append(frame)
                self._arrived.set()
        except ConnectionClosed as e:
            self.close_reason = repr(e)
        else:
            self.close_reason = "closed by server"
        finally:
            if self.close_reason is None:
                self.close_reason = "reader stopped"
            self.close_code = self._ws.close_code
            self._arrived.set()

    async def closed(self, timeout: float = 10.0) -> int | None:
        """Wait until the server closes the socket; its close code."""
        assert self._reader is not None, "not open"
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)
        return self.close_code

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None

    # --- sending -------------------------------------------------------------------------------
    async def send(self, frame: Event) -> None:
        assert self._ws is not None, "not connected"
        await self._ws.send(json.dumps(frame))

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as it is (text, or binary for bytes)."""
        assert self._ws is not None, "not connected"
        await self._ws.send(frame)

    async def ack(self, seq: int) -> None:
        await self.send({"type": "ack", "seq": seq})

    async def presence(self, chat_id: str, state: str) -> None:
        await self.send({"type": "presence", "chat_id": chat_id, "state": state})

    # --- receiving -----------------------------------------------------------------------------
    def _take(self, type_: str | None, where: Predicate | None) -> Event | None:
        for i, frame in enumerate(self._buffer):
            if (type_ is None or frame.get("type") == type_) and (where is None or where(frame)):
                return self._buffer.pop(i)
        return None

    async def next_event(
        self,
        type: str | None = None,
        *,
        where: Predicate | None = None,
        timeout: float = 5.0,
    ) -> Event:
        """The first unconsumed live frame of `type` (and matching `where`); waits up to timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self._take(type, where)
            if found is not None:
                return found
            if self._reader is None or self._reader.done():
                raise EventStreamClosed(
                    f"socket closed ({self.close_reason}) while waiting for {type!r}; "
                    f"got: {self._buffer}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no {type or 'event'!r} within {timeout}s; unconsumed frames: {self._buffer}"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def next_heartbeat(self, timeout: float = 5.0) -> Event:
        """The next heartbeat frame the server sends; waits up to timeout."""
        seen = len(self.heartbeats)
        async with asyncio.timeout(timeout):
            while len(self.heartbeats) == seen:
                if self._reader is not None and self._reader.done():
                    raise EventStreamClosed(f"events socket closed: {self.close_reason}")
                self._arrived.clear()
                await self._arrived.wait()
        return self.heartbeats[seen]

    async def assert_no_event(
        self, type: str | None = None, *, where: Predicate | None = None, within: float = 0.3
    ) -> None:
        """Nothing matching arrives within `within` seconds (a bounded negative check)."""
        try:
            frame = await self.next_event(type, where=where, timeout=within)
        except AssertionError:  # timed out (or the socket closed): nothing arrived
            return
        raise AssertionError(f"unexpected {type or 'event'}: {frame}")

    def pending(self, type: str | None = None) -> list[Event]:
        """Unconsumed frames (of `type`) received so far."""
        return [f for f in self._buffer if type is None or f.get("type") == type]


def seqs(events: list[Event]) -> list[int]:
    return [e["seq"] for e in events]
