"""listen(): the event-stream protocol, acks and resuming, against a scripted WebSocket server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.datastructures import Headers

from voxbox.client import VoxboxAPIError, listen
from voxbox.client.events import events_url

Session = Callable[[ServerConnection, list[dict[str, Any]]], Awaitable[None]]


def event(seq: int) -> dict[str, Any]:
    return {"seq": seq, "type": "message.created", "data": {"id": f"m{seq}"}}


async def send(ws: ServerConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def receive(ws: ServerConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


@asynccontextmanager
async def scripted_server(
    *sessions: Session,
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> AsyncIterator[tuple[str, list[list[dict[str, Any]]]]]:
    """A server whose n-th connection runs sessions[n]; yields its root URL and, per
    connection, the frames the client sent (the session records them)."""
    received: list[list[dict[str, Any]]] = []

    async def handler(ws: ServerConnection) -> None:
        frames: list[dict[str, Any]] = []
        received.append(frames)
        await sessions[len(received) - 1](ws, frames)

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", received


async def handshake(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
    frames.append(await receive(ws))
    frames.append(await receive(ws))


def test_events_url() -> None:
    assert events_url("http://h:8080") == "ws://h:8080/api/v1/events"
    assert events_url("https://h/vox/") == "wss://h/vox/api/v1/events"
    with pytest.raises(ValueError):
        events_url("ftp://h")


async def test_auth_resume_yield_and_ack() -> None:
    async def session(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        await send(ws, event(6))
        await send(ws, {"type": "ready", "seq": 6})
        await send(ws, {"type": "presence", "data": {"state": "typing"}})
        frames.append(await receive(ws))  # the ack of seq 6
        await ws.close()

    async with scripted_server(session) as (url, received):
        got = [frame async for frame in listen(url, "tok", after=5, reconnect=False)]

    assert [f["type"] for f in got] == ["message.created", "ready", "presence"]
    assert received == [
        [
            {"type": "auth", "token": "tok"},
            {"type": "resume", "after": 5},
            {"type": "ack", "seq": 6},
        ]
    ]


async def test_reconnect_resumes_after_last_seq_without_duplicates() -> None:
    async def first(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        await send(ws, event(1))
        await send(ws, event(2))
        frames.append(await receive(ws))  # ack 1: event 2 is now being handled
        await ws.close(1011, "server restarting")

    async def second(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        # An overlapping replay: event 2 was yielded already and must not come again.
        await send(ws, event(2))
        await send(ws, event(3))
        await send(ws, {"type": "ready", "seq": 3})
        await ws.wait_closed()

    async with scripted_server(first, second) as (url, received):
        seqs = []
        async for frame in listen(url, "tok", max_delay=0.01):
            seqs.append(frame.get("seq"))
            if frame["type"] == "ready":
                break

    assert seqs == [1, 2, 3, 3]
    assert received[1][1] == {"type": "resume", "after": 2}


async def test_rejected_token_close_is_not_retried() -> None:
    async def session(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        await ws.close(4401, "bad token")

    async with scripted_server(session) as (url, received):
        with pytest.raises(VoxboxAPIError) as caught:
            async for _ in listen(url, "bad", max_delay=0.01):
                pass
    assert caught.value.status == 401
    assert "bad token" in caught.value.detail
    assert len(received) == 1


async def test_rejected_upgrade_is_not_retried() -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        body = json.dumps({"title": "Forbidden", "detail": "origin", "code": "forbidden"})
        headers = Headers({"Content-Type": "application/problem+json"})
        return Response(403, "Forbidden", headers, body.encode())

    async def never(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        raise AssertionError("the upgrade was refused")

    async with scripted_server(never, process_request=refuse) as (url, _):
        with pytest.raises(VoxboxAPIError) as caught:
            async for _ in listen(url, "tok", max_delay=0.01):
                pass
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        403,
        "forbidden",
        "origin",
    )


async def test_a_reset_follows_the_servers_seqs_from_its_end() -> None:
    """Resuming past the end of a restored server's log: `ready` says `reset` with the log's
    end, and the events after it are yielded (and acked) although their seqs are below the
    position resumed from; a reconnect resumes after the server's seqs, not the old position."""

    async def first(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        await send(ws, {"type": "ready", "seq": 7, "reset": True})
        await send(ws, event(8))
        frames.append(await receive(ws))  # the ack of seq 8
        await ws.close(1011, "server restarting")

    async def second(ws: ServerConnection, frames: list[dict[str, Any]]) -> None:
        await handshake(ws, frames)
        await send(ws, event(9))
        await send(ws, {"type": "ready", "seq": 9})
        await ws.wait_closed()

    async with scripted_server(first, second) as (url, received):
        got = []
        async for frame in listen(url, "tok", after=1000, max_delay=0.01):
            got.append(frame)
            if frame["type"] == "ready" and frame["seq"] == 9:
                break

    assert [(f["type"], f["seq"]) for f in got] == [
        ("ready", 7),
        ("message.created", 8),
        ("message.created", 9),
        ("ready", 9),
    ]
    assert got[0]["reset"] is True
    assert received[0][1:] == [{"type": "resume", "after": 1000}, {"type": "ack", "seq": 8}]
    assert received[1][1] == {"type": "resume", "after": 8}
