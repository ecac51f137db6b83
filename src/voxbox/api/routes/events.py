"""Realtime: the events WebSocket and its long-poll fallback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket, WebSocketDisconnect

from voxbox.api.deps import SESSION_COOKIE, B, CurrentUser, own_origin
from voxbox.core import accounts, realtime, sessions
from voxbox.core.backends import Backends
from voxbox.core.errors import BadRequest, VoxboxError
from voxbox.core.principal import Principal
from voxbox.core.workers import AckWriter
from voxbox.metrics import WEBSOCKETS_OPEN

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403  # the session cookie from a page of another origin
CLOSE_PROTOCOL = 1008
CLOSE_BEHIND = 1013  # "try again later": resume from the last seq


@router.get("/events")
async def long_poll(
    request: Request,
    b: B,
    user: CurrentUser,
    after: Annotated[int, Query(le=realtime.MAX_POSITION)] = 0,  # below 0: the start
    timeout: Annotated[float, Query(ge=0, allow_inf_nan=False)] = 25,
) -> Response:
    """Events after ``after``; waits up to ``timeout`` seconds for one when there are none.

    Returns `{events: [...], seq}`; pass `seq` as `after` next time. Asking for the events
    after ``after`` acknowledges those up to it, as a WebSocket ack would (delivered receipts).
    """
    acks: AckWriter = request.app.state.acks
    frames, seq, reset = await realtime.poll(
        b, user, after, timeout, ack=lambda seq: acks.offer(user, seq)
    )
    tail = ',"reset":true' if reset else ""
    body = '{"events":[' + ",".join(frames) + f'],"seq":{seq}{tail}}}'
    return Response(body, media_type="application/json")


@router.websocket("/events")
async def events_socket(ws: WebSocket) -> None:
    b: Backends = ws.app.state.backends
    await ws.accept()
    try:
        user, token, after = await _handshake(ws, b)
    except (WebSocketDisconnect, _Refused):
        return
    WEBSOCKETS_OPEN.inc()
    try:
        async with realtime.open_stream(b, user, after, token) as stream:
            ready: dict[str, object] = {"type": "ready"}
            if await stream.reset_if_past_end():
                ready["reset"] = True
            async for page in stream.replay():
                for frame in page:
                    await ws.send_text(frame)
            await ws.send_text(json.dumps({**ready, "seq": stream.last_seq}))
            await _live(ws, b, user, stream)
    except WebSocketDisconnect:
        pass
    except realtime.StreamOverflow:
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_BEHIND, "too far behind; resume from your last seq")
    except realtime.SessionEnded:
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_UNAUTHORIZED, "logged out")
    finally:
        WEBSOCKETS_OPEN.dec()


class _Refused(Exception):
    pass


async def _refuse(ws: WebSocket, code: int, detail: str, error_code: str | None = None) -> _Refused:
    frame = {"type": "error", "detail": detail}
    if error_code is not None:
        frame["code"] = error_code
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(frame))
        await ws.close(code, detail[:120])
    return _Refused(detail)


async def _handshake(ws: WebSocket, b: Backends) -> tuple[Principal, str, int]:
    """``auth`` then ``resume``, or only ``resume`` when the session cookie came with the
    upgrade request (and its Origin is ours); anything else closes the socket with a reason."""
    timeout = b.settings.limits.websocket_auth_seconds
    try:
        first = await asyncio.wait_for(_receive_object(ws), timeout)
        if first.get("type") == "resume" and SESSION_COOKIE in ws.cookies:
            user = await _cookie_user(ws, b)
            token = ws.cookies[SESSION_COOKIE]
            resume = first
        else:
            given = first.get("token")
            if first.get("type") != "auth" or not isinstance(given, str):
                raise await _refuse(
                    ws, CLOSE_PROTOCOL, 'First send {"type": "auth", "token": ...}.'
                )
            token = given
            user = await _authenticate(ws, b, token)
            resume = await asyncio.wait_for(_receive_object(ws), timeout)
        after = resume.get("after")
        if (
            resume.get("type") != "resume"
            or not isinstance(after, int)
            or isinstance(after, bool)  # JSON true is no position
            or after < 0
        ):
            raise await _refuse(
                ws, CLOSE_PROTOCOL, 'Then send {"type": "resume", "after": SEQ} (0: everything).'
            )
        realtime.check_position(after)
    except VoxboxError as exc:  # a position above 2^53
        raise await _refuse(ws, CLOSE_PROTOCOL, exc.detail, exc.code) from None
    except TimeoutError:
        raise await _refuse(ws, CLOSE_PROTOCOL, "Handshake timed out.") from None
    except ValueError as exc:
        raise await _refuse(ws, CLOSE_PROTOCOL, str(exc)) from None
    return user, token, after


async def _cookie_user(ws: WebSocket, b: Backends) -> Principal:
    """The session cookie's user. A browser sends the cookie with any site's WebSocket to us,
    so the upgrade's Origin must be ours (no cross-site WebSocket hijacking)."""
    try:
        sessions.check_same_origin(ws.headers.get("origin"), own_origin(ws, b.settings))
    except VoxboxError as exc:
        raise await _refuse(ws, CLOSE_FORBIDDEN, exc.detail) from None
    return await _authenticate(ws, b, ws.cookies[SESSION_COOKIE])


async def _authenticate(ws: WebSocket, b: Backends, token: str) -> Principal:
    try:
        return await accounts.authenticate(b, token)
    except VoxboxError as exc:
        raise await _refuse(ws, CLOSE_UNAUTHORIZED, exc.detail) from None


async def _receive_object(ws: WebSocket) -> dict[str, Any]:
    """The next frame, a JSON object; ValueError saying what is wrong with anything else."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        raise ValueError("Frames are JSON text; this one was binary.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("This frame's JSON is nested too deeply.") from None
    except ValueError:
        raise ValueError("Frames are JSON objects; this one is not JSON.") from None
    if not isinstance(data, dict):
        raise ValueError("Frames are JSON objects.")
    return data


async def _live(ws: WebSocket, b: Backends, user: Principal, stream: realtime.EventStream) -> None:
    """Forward live events while handling the client's acks and presence, until either side ends."""
    acks: AckWriter = ws.app.state.acks

    async def forward() -> None:
        while True:
            for frame in await stream.next_frames():
                await ws.send_text(frame)

    async def listen() -> None:
        while True:
            try:
                frame = await _receive_object(ws)
            except ValueError as exc:
                await ws.send_text(json.dumps({"type": "error", "detail": str(exc)}))
                continue
            try:
                await _handle_client_frame(b, user, frame, acks)
            except VoxboxError as exc:
                await ws.send_text(
                    json.dumps({"type": "error", "code": exc.code, "detail": exc.detail})
                )

    tasks = [asyncio.create_task(forward()), asyncio.create_task(listen())]
    try:
        ended = await _first_to_end(tasks)  # a disconnect, an overflow
    finally:
        await _cancel(tasks)
        # This frame holds no task past here: a task holds its exception, whose traceback
        # holds this frame, a cycle that would keep the whole connection in memory until a
        # full garbage collection.
        tasks.clear()
    if ended is not None:
        try:
            raise ended
        finally:
            ended = None


async def _first_to_end(tasks: list[asyncio.Task[None]]) -> BaseException | None:
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return next(task.exception() for task in done)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _handle_client_frame(
    b: Backends, user: Principal, frame: dict[str, Any], acks: AckWriter
) -> None:
    kind = frame.get("type")
    if kind == "ack" and isinstance(frame.get("seq"), int):
        acks.offer(user, realtime.check_position(frame["seq"]))
    elif (
        kind == "presence"
        and isinstance(frame.get("chat_id"), str)
        and frame.get("state") in ("typing", "recording", "idle")
    ):
        await realtime.set_presence(b, user, frame["chat_id"], frame["state"])
    elif kind == "ping":
        pass
    else:
        raise BadRequest(f"Unknown or malformed frame of type {kind!r}.")
