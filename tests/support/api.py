"""Users and small API helpers shared by the API tests."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.events import EventStream
from support.server import ServerProcess

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PROBLEM_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid",
    429: "rate_limited",
    431: "header_fields_too_large",
    507: "insufficient_storage",
}


def unique_handle(prefix: str = "u") -> str:
    """A fresh handle (lower-case, ≤ 32 chars) so tests never share a user."""
    return f"{prefix[:18]}_{secrets.token_hex(6)}"


def client_id() -> str:
    return str(uuid.uuid4())


@dataclass
class User:
    server: ServerProcess
    id: str
    handle: str
    password: str
    token: str
    display_name: str | None
    http: httpx.Client
    _clients: list[httpx.Client] = field(default_factory=list, repr=False)

    def events(self, after: int = 0) -> EventStream:
        """`async with user.events(after=N) as ev:` — the WebSocket, authenticated and resumed."""
        return EventStream(self.server.ws_url, self.token, after=after)

    ws = events

    def async_http(self, **kwargs: Any) -> httpx.AsyncClient:
        return self.server.async_client(self.token, **kwargs)

    # --- the common calls ----------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return ok(self.http.get("/me"))

    def chats(self) -> list[dict[str, Any]]:
        return ok(self.http.get("/chats"))["chats"]

    def chat(self, chat_id: str) -> dict[str, Any]:
        return ok(self.http.get(f"/chats/{chat_id}"))

    def self_chat(self) -> dict[str, Any]:
        selfs = [c for c in self.chats() if c["kind"] == "self"]
        assert len(selfs) == 1, selfs
        return selfs[0]

    def direct_with(self, other: User) -> str:
        r = self.http.post("/chats", json={"kind": "direct", "handle": other.handle})
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def group(self, title: str, *others: User) -> str:
        r = self.http.post(
            "/chats", json={"kind": "group", "title": title, "handles": [o.handle for o in others]}
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def send(self, chat_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
        body = {"client_id": client_id(), "kind": "text", "text": text, **extra}
        r = self.http.post(f"/chats/{chat_id}/messages", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def messages(self, chat_id: str, **params: Any) -> list[dict[str, Any]]:
        return ok(self.http.get(f"/chats/{chat_id}/messages", params=params))["messages"]

    def latest_seq(self) -> int:
        """The newest seq of this user's event log (a long-poll that does not wait)."""
        return int(ok(self.http.get("/events", params={"after": 0, "timeout": 0}))["seq"])


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def assert_problem(
    r: httpx.Response, status: int | tuple[int, ...], code: str | None = None
) -> dict[str, Any]:
    """`r` is an RFC 9457 problem with our `code`; returns its body."""
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (
        f"{r.request.method} {r.request.url}: expected {statuses}, got {r.status_code} {r.text}"
    )
    ctype = r.headers.get("content-type", "")
    assert ctype.startswith("application/problem+json"), f"content-type {ctype!r}: {r.text}"
    body = r.json()
    for key in ("type", "title", "status", "detail", "code"):
        assert key in body, f"problem without {key!r}: {body}"
    assert body["status"] == r.status_code, body
    expected_code = code or PROBLEM_CODES.get(r.status_code)
    if expected_code:
        assert body["code"] == expected_code, body
    return body


def register(
    server: ServerProcess,
    handle: str | None = None,
    password: str | None = None,
    *,
    display_name: str | None = None,
    invite: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "handle": unique_handle() if handle is None else handle,
        "password": secrets.token_urlsafe(12) if password is None else password,
    }
    if display_name is not None:
        body["display_name"] = display_name
    if invite is not None:
        body["invite"] = invite
    with server.client() as c:
        return c.post("/auth/register", json=body)


def make_user_on(
    server: ServerProcess,
    *,
    handle: str | None = None,
    password: str | None = None,
    display_name: str | None = None,
    invite: str | None = None,
    prefix: str = "u",
) -> User:
    handle = handle or unique_handle(prefix)
    password = password or secrets.token_urlsafe(12)
    r = register(server, handle, password, display_name=display_name, invite=invite)
    body = ok(r, 201)
    return user_from(server, body, password)


def login_on(server: ServerProcess, handle: str, password: str) -> User:
    with server.client() as c:
        body = ok(c.post("/auth/login", json={"handle": handle, "password": password}))
    return user_from(server, body, password)


def user_from(server: ServerProcess, body: dict[str, Any], password: str) -> User:
    u = body["user"]
    token = body["token"]
    return User(
        server=server,
        id=u["id"],
        handle=u["handle"],
        password=password,
        token=token,
        display_name=u.get("display_name"),
        http=server.client(token),
    )
