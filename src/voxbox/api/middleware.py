"""Pure ASGI middleware: body size limits, URL checks, one log line and metrics per request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxbox.core.errors import DISK_FULL_DETAIL, is_disk_full
from voxbox.metrics import HTTP_REQUESTS, HTTP_SECONDS

log = logging.getLogger("voxbox.access")
errors_log = logging.getLogger("voxbox.api")


class BodyLimitMiddleware:
    """Refuse request bodies over their route's limit with 413, whether announced or streamed,
    before the app (or the authentication) reads a byte of them.

    Every route takes at most ``max_bytes`` (JSON), except those in ``streamed``: the tus PATCH
    (unbounded here: it checks the upload's own length and the user's quota as it writes, after
    authentication) and the routes that take a file as multipart, each with its own limit. The
    Content-Type claimed does not matter.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, streamed: dict[tuple[str, str], int | None]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed  # (method, path prefix) -> limit (None: the route's own)

    def _limit(self, scope: Scope) -> int | None:
        method, path = scope["method"], scope["path"]
        for (route_method, prefix), limit in self.streamed.items():
            if method == route_method and path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or len(length) > 19 or int(length) > limit:
                await self._refuse(send, limit)
                return
            await self.app(scope, receive, send)  # the server enforces the announced length
            return
        if limit > self.max_bytes:  # a file route: its body is too big to buffer here
            await self._refuse(send, limit, status=411)
            return
        # No length announced (chunked): buffer up to the limit, so the app never sees a
        # cut-off body and an oversized one is refused before any parsing.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        buffered: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal buffered
            if buffered is not None:
                message, buffered = buffered, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int, status: int = 413) -> None:
        if status == 413:
            detail = f"Request bodies here are limited to {limit} bytes."
            await send_problem(send, 413, "Payload too large", detail, "payload_too_large")
        else:
            detail = "Send a Content-Length with a file (chunked bodies are not taken)."
            await send_problem(send, 411, "Length required", detail, "length_required")


class SecurityHeadersMiddleware:
    """Every response says: no MIME sniffing, and no Referer to other sites. A response that
    sets its own values (media, the web app) keeps them."""

    HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class UnhandledErrorMiddleware:
    """An exception no route handled: one log line with its traceback, and a 500 problem (a
    full disk, from the OS or the database: a 507 and one line, no traceback).

    (Starlette's own handler would answer too, but then re-raise, and the server would log the
    same traceback a second time.)"""

    def __init__(self, app: ASGIApp, on_disk_full: Callable[[], None]) -> None:
        self.app = app
        self.on_disk_full = on_disk_full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if is_disk_full(exc):  # the operator's problem, not a bug: no traceback
                cause = getattr(exc, "orig", None) or exc  # not SQLAlchemy's SQL and parameters
                errors_log.error("disk full on %s %s: %s", scope["method"], scope["path"], cause)
                self.on_disk_full()
                if not started:
                    await send_problem(
                        send, 507, "Insufficient storage", DISK_FULL_DETAIL, "insufficient_storage"
                    )
                return
            errors_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                detail = "Something went wrong on our side."
                await send_problem(send, 500, "Internal server error", detail, "internal")


class URLCheckMiddleware:
    """A NUL in a URL (``%00``, in the path or the query) is a 400 before any route sees it: no
    database here stores one, and PostgreSQL fails on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
            if b"%00" in raw or b"\x00" in raw or "\x00" in scope["path"]:
                if scope["type"] == "http":
                    detail = "A URL may not hold a NUL character (%00)."
                    await send_problem(send, 400, "Bad request", detail, "bad_request")
                return
        await self.app(scope, receive, send)


async def send_problem(send: Send, status: int, title: str, detail: str, code: str) -> None:
    """Answer with RFC 9457 problem JSON from middleware (before any route), closing the
    connection: the request's body may be unread."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLogMiddleware:
    """One log line per request, and request metrics labelled by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # labelled metric children, looked up once per route and status (``labels()`` locks)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            counter = self._counters.get((method, template, status))
            if counter is None:
                counter = self._counters[method, template, status] = HTTP_REQUESTS.labels(
                    method, template, str(status)
                )
            counter.inc()
            timer = self._timers.get((method, template))
            if timer is None:
                timer = self._timers[method, template] = HTTP_SECONDS.labels(method, template)
            timer.observe(elapsed)
            client = scope.get("client")
            log.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                method,
                scope["path"],
                status,
                elapsed * 1000,
            )
