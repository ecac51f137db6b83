"""The live event stream (WebSocket ``/api/v1/events``) as an async iterator."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voxbox.client.http import API_PREFIX, DEFAULT_CODES, VoxboxAPIError, problem_error

log = logging.getLogger(__name__)

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}

# Close codes that mean "this request is wrong", not "the connection broke": trying again
# would fail the same way. 1008 (policy violation) is the server's answer to a malformed
# handshake, the others are protocol faults; 4400-4499 mirror HTTP 4xx (4401: bad token),
# except 4429 (rate limited), which is worth retrying later.
_FATAL_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010})

_FIRST_DELAY = 0.5


def events_url(base_url: str) -> str:
    """The WebSocket URL of the event stream of the server rooted at ``base_url``."""
    parts = urlsplit(base_url)
    scheme = _WS_SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    path = parts.path.rstrip("/") + API_PREFIX + "/events"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _close_error(code: int | None, reason: str) -> VoxboxAPIError | None:
    """The error to raise for a server close that retrying cannot fix, else ``None``."""
    if code is None:
        return None
    if 4400 <= code < 4500 and code != 4429:
        status = code - 4000
    elif code in _FATAL_CLOSE_CODES:
        status = 400
    else:
        return None
    try:
        title = HTTPStatus(status).phrase
    except ValueError:  # 44xx codes without an HTTP twin, e.g. 4499
        title = "Event stream refused"
    where = f"WebSocket close code {code}"
    return VoxboxAPIError(
        status=status,
        code=DEFAULT_CODES.get(status, "error"),
        title=title,
        detail=f"{reason} ({where})" if reason else where,
    )


async def listen(
    base_url: str,
    token: str,
    after: int = 0,
    *,
    reconnect: bool = True,
    max_delay: float = 30.0,
) -> AsyncIterator[dict[str, Any]]:
    """Yield every frame the server sends on the event stream, starting after seq ``after``.

    Frames are dicts: logged events (``seq``, ``type``, ``data``), the ``ready`` frame that
    follows the replay of missed events, and ephemeral ones without seq (presence); the
    server's ``heartbeat`` frames are not yielded. A logged
    event is acknowledged when the caller asks for the next frame, i.e. once it was handled.

    With ``reconnect`` (the default) a lost connection is re-opened with exponential backoff
    (up to ``max_delay`` seconds) and resumed after the last seq yielded, so each logged event
    is yielded exactly once; a new ``ready`` frame follows each reconnection. Without it, the
    iteration ends when the server closes the stream and connection errors propagate.

    A ``ready`` frame with ``"reset": true`` means the position resumed from is past the end of
    the server's log (it was restored from a backup, or reset): the stream goes on from the
    server's ``seq``, and events the caller saw before may be gone or come again with other
    seqs. The caller should drop what it saved (its position included) and reload.

    Raises :class:`VoxboxAPIError` when the server refuses the stream in a way retrying cannot
    fix: an HTTP 4xx on the upgrade (except 429), or a 4xxx or policy close code (bad token).
    """
    url = events_url(base_url)
    last_seq = after
    failures = 0
    while True:
        failure: str
        try:
            async with connect(url) as ws:
                try:
                    await ws.send(json.dumps({"type": "auth", "token": token}))
                    await ws.send(json.dumps({"type": "resume", "after": last_seq}))
                    async for raw in ws:
                        frame = json.loads(raw)
                        if not isinstance(frame, dict):
                            continue  # the contract only defines objects
                        seq = frame.get("seq")
                        if frame.get("type") == "heartbeat":
                            continue  # the server read the log for us: nothing to yield
                        if frame.get("type") == "ready":
                            failures = 0
                            if frame.get("reset") is True and isinstance(seq, int):
                                # The server's log ends before our position: follow its seqs
                                # from there, or every new event would look like a repeat.
                                last_seq = seq
                        elif isinstance(seq, int):
                            # After a reconnect the replay may overlap what was already
                            # yielded (an event published while we were resuming).
                            if seq <= last_seq:
                                continue
                            yield frame
                            last_seq = seq
                            await ws.send(json.dumps({"type": "ack", "seq": seq}))
                            continue
                        yield frame
                except ConnectionClosed:
                    pass  # the close code, checked below, decides what happens next
            error = _close_error(ws.close_code, ws.close_reason or "")
            if error is not None:
                raise error
            if not reconnect:
                return
            failure = f"closed with code {ws.close_code}"
        except InvalidStatus as exc:
            response = exc.response
            status = response.status_code
            if (400 <= status < 500 and status != 429) or not reconnect:
                raise problem_error(
                    status, response.reason_phrase, response.headers, bytes(response.body)
                ) from exc
            failure = f"upgrade refused with HTTP {status}"
        except (OSError, InvalidHandshake) as exc:
            if not reconnect:
                raise
            failure = str(exc) or type(exc).__name__
        # Jitter keeps many clients from reconnecting in lockstep after a server restart.
        delay = min(max_delay, _FIRST_DELAY * 2 ** min(failures, 16)) * random.uniform(0.5, 1.0)
        failures += 1
        log.warning("event stream lost (%s); reconnecting in %.1fs", failure, delay)
        await asyncio.sleep(delay)
