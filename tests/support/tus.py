"""Raw tus requests for the upload tests (the conformance tests also use tuspy)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from support.api import client_id, ok
from support.audio import encode

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(http: httpx.Client, *, length: int | None = None, **meta: str) -> httpx.Response:
    headers = dict(TUS)
    if length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(length)
    if meta:
        headers["Upload-Metadata"] = metadata(**meta)
    return http.post("/uploads", headers=headers)


def upload_id(created: httpx.Response) -> str:
    assert created.status_code == 201, created.text
    return created.headers["Location"].rsplit("/", 1)[-1]


def patch(
    http: httpx.Client, uid: str, offset: int, body: bytes, *, length: int | None = None
) -> httpx.Response:
    headers = {
        **TUS,
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
    }
    if length is not None:
        headers["Upload-Length"] = str(length)
    return http.patch(f"/uploads/{uid}", headers=headers, content=body)


def head(http: httpx.Client, uid: str) -> httpx.Response:
    return http.head(f"/uploads/{uid}", headers=TUS)


def upload(http: httpx.Client, data: bytes, pieces: int = 1, **meta: str) -> str:
    """A complete upload of known length, in ``pieces`` PATCHes; returns its id."""
    uid = upload_id(create(http, length=len(data), **meta))
    offset = 0
    size = -(-len(data) // pieces) if data else 0
    while offset < len(data):
        r = patch(http, uid, offset, data[offset : offset + size])
        assert r.status_code == 204, r.text
        offset = int(r.headers["Upload-Offset"])
    return uid


def record(http: httpx.Client, pieces: list[bytes], **meta: str) -> str:
    """A deferred-length upload fed chunk by chunk, like a recording; left open."""
    uid = upload_id(create(http, **meta))
    offset = 0
    for piece in pieces:
        r = patch(http, uid, offset, piece)
        assert r.status_code == 204, r.text
        offset = int(r.headers["Upload-Offset"])
    return uid


def send_voice_note(user: Any, chat_id: str, seconds: float) -> dict[str, Any]:
    """Send a voice message of a tone lasting ``seconds`` (Ogg/Opus) as ``user``; the message."""
    data = encode(seconds, "ogg", "libopus")
    uid = upload(user.http, data, filename="note.ogg", kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    message: dict[str, Any] = ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    return message
