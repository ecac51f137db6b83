"""Hostile and careless input (issue 9, items 1, 3 and 4): bodies nobody asked for, strings no
database can store, numbers no parser should trust, and WebSocket frames that are not what the
protocol says. Each is a clear 4xx (or a 1008 close with an error frame), never a 500, and the
connection stays usable."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support.api import assert_problem, client_id, ok
from support.tus import upload


def raw_post(user, path: str, body: bytes, content_type: str = "application/json"):
    return user.http.post(path, content=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    "content_type", ["application/offset+octet-stream", "multipart/form-data; boundary=x"]
)
def test_bodies_no_route_streams_are_refused_before_they_are_read(server, content_type) -> None:
    big = b"\0" * (1024 * 1024)  # 16x the JSON limit of 64 KiB
    with httpx.Client(base_url=server.url) as http:
        r = http.post("/api/v1/auth/login", content=big, headers={"Content-Type": content_type})
        assert_problem(r, 413, "payload_too_large")
        # announced nothing (chunked): refused once past the limit, not buffered whole
        r = http.post(
            "/api/v1/chats",
            content=iter([big[:65536]] * 16),
            headers={"Content-Type": content_type},
        )
        assert_problem(r, 413, "payload_too_large")


def test_the_routes_that_take_files_still_do(make_user) -> None:
    alice = make_user()
    uid = upload(alice.http, b"x" * 200_000, filename="a.bin", kind="audio")  # PATCH streams
    assert uid
    r = alice.http.post(
        "/imports",
        files={"file": ("chat.txt", b"25/11/2026, 14:03 - A: hi\n" * 5000, "text/plain")},
    )
    ok(r, 202)  # 130 KB of multipart: over the JSON limit, under the import limit


@pytest.mark.parametrize(
    "text", ['"\\ud800"', '"a\\udfffb"', '"nul\\u0000here"'], ids=["surrogate", "low", "nul"]
)
def test_strings_no_database_stores_are_a_422(make_user, text: str) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    body = f'{{"client_id": "{client_id()}", "kind": "text", "text": {text}}}'.encode()
    problem = assert_problem(raw_post(alice, f"/chats/{chat_id}/messages", body), 422)
    assert "text" in problem["detail"]
    for path, body in [
        ("/auth/login", f'{{"handle": {text}, "password": "whatever12"}}'.encode()),
        ("/chats", f'{{"kind": "group", "title": {text}, "handles": []}}'.encode()),
    ]:
        assert_problem(raw_post(alice, path, body), 422)
    # a real emoji, written as a surrogate pair, is fine
    emoji = f'{{"client_id": "{client_id()}", "kind": "text", "text": "\\ud83d\\ude00"}}'
    assert ok(raw_post(alice, f"/chats/{chat_id}/messages", emoji.encode()), 201)["text"] == "😀"


def test_nul_in_a_url_is_a_400(make_user) -> None:
    alice = make_user()
    for path in ["/chats/abc%00def", "/chats/x/messages?before=%00", "/users/a%00b"]:
        assert_problem(alice.http.get(path), 400, "bad_request")
    ok(alice.http.get("/chats"))  # the same connection still works


def test_numbers_in_headers_and_queries_are_parsed_strictly(make_user) -> None:
    alice = make_user()
    superscript_two = b"\xb2"  # "²" in Latin-1, as HTTP headers are read: str.isdigit() says yes
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": superscript_two}
    assert_problem(alice.http.post("/uploads", headers=headers), 400, "bad_request")
    uid = upload(alice.http, b"x" * 10, filename="a.bin", kind="audio")
    patch = alice.http.patch(
        f"/uploads/{uid}",
        content=b"",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": superscript_two,
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert_problem(patch, 400, "bad_request")
    for timeout in ["nan", "inf", "-1"]:
        assert_problem(alice.http.get("/events", params={"timeout": timeout}), 422)


def test_a_range_of_thousands_of_digits_is_ignored(make_user) -> None:
    from support.tus import send_voice_note

    alice, bob = make_user(), make_user()
    note = send_voice_note(alice, alice.direct_with(bob), 0.5)
    url = f"/media/{note['media']['id']}/content"
    r = bob.http.get(url, headers={"Range": "bytes=" + "9" * 4400 + "-"})
    assert r.status_code in (200, 416), r.text  # a malformed range is no range
    assert bob.http.get(url, headers={"Range": "bytes=0-9"}).status_code == 206


async def ws_frames(server, token: str, frames: list[str | bytes]) -> tuple[list[dict], int]:
    """Send the frames; return what the server sent back and its close code."""
    received = []
    async with connect(server.ws_url, open_timeout=10, max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        for frame in frames:
            await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    received.append(json.loads(await ws.recv()))
    assert closed.value.rcvd is not None
    return received, closed.value.rcvd.code


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type": "resume", "after": 0}',
        '{"type": "resume", "after": true}',
        '{"type": "resume", "after": 1e30}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["binary", "true", "float", "deep"],
)
async def test_a_bad_handshake_frame_closes_1008_with_an_error(make_user, frame) -> None:
    alice = make_user()
    received, code = await ws_frames(alice.server, alice.token, [frame])
    assert code == 1008
    assert [f["type"] for f in received] == ["error"] and received[0]["detail"]


async def test_bad_frames_on_a_live_socket_get_errors_and_it_goes_on(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    async with alice.events(after=alice.latest_seq()) as ev:
        await ev.send_raw(b"\x00binary")
        assert (await ev.next_event("error"))["detail"]
        await ev.send_raw("[" * 100_000 + "]" * 100_000)
        assert (await ev.next_event("error"))["detail"]
        msg = bob.send(chat_id, "still here")
        created = await ev.next_event("message.created")
        assert created["data"]["id"] == msg["id"]
