"""Bad input never gives a 500 or a half-written row, and every error is RFC 9457 problem JSON
with our `code`: malformed JSON, wrong types, unknown fields, size limits, unknown ids."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support.api import assert_problem, client_id, unique_handle

MAX_TEXT = 4096
MAX_JSON = 64 * 1024


def text_body(text: str, **extra: object) -> dict:
    return {"client_id": client_id(), "kind": "text", "text": text, **extra}


@pytest.fixture
def pair(make_user):
    alice, bob = make_user(), make_user()
    return alice, bob, alice.direct_with(bob)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"client_id": "x", "kind": "text", "text": "unterminated',
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
    ],
)
def test_malformed_json_is_a_problem_and_writes_nothing(pair, raw: bytes) -> None:
    alice, _, chat_id = pair
    r = alice.http.post(
        f"/chats/{chat_id}/messages", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(r, (400, 422))
    assert alice.messages(chat_id) == []


def test_malformed_json_on_register_is_a_problem(anon) -> None:
    r = anon.post(
        "/auth/register", content=b"{'handle': 1", headers={"content-type": "application/json"}
    )
    assert_problem(r, (400, 422))


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": client_id(), "kind": "text", "text": 123},
        {"client_id": client_id(), "kind": "text", "text": ["a"]},
        {"client_id": 42, "kind": "text", "text": "x"},
        {"client_id": client_id(), "kind": 1, "text": "x"},
        {"client_id": client_id(), "kind": "smoke-signal", "text": "x"},
        {"client_id": client_id(), "kind": "text", "text": "x", "reply_to": 7},
        {"client_id": client_id(), "kind": "text", "text": "x", "view_once": "maybe"},
        {"client_id": client_id(), "kind": "text"},  # no text
        {"client_id": client_id(), "kind": "text", "text": ""},
        {"kind": "text", "text": "no client id"},
    ],
    ids=[
        "text-int", "text-list", "client_id-int", "kind-int", "kind-unknown", "reply_to-int",
        "view_once-str", "text-missing", "text-empty", "client_id-missing",
    ],
)  # fmt: skip
def test_wrong_types_are_422_and_write_nothing(pair, body: dict) -> None:
    alice, _, chat_id = pair
    assert_problem(alice.http.post(f"/chats/{chat_id}/messages", json=body), 422, "invalid")
    assert alice.messages(chat_id) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/register", {"handle": "x_unknown_fld", "password": "password1", "admin": True}),
        ("/auth/login", {"handle": "someone", "password": "password1", "remember": True}),
        ("/chats", {"kind": "group", "title": "t", "handles": [], "owner": "me"}),
    ],
)
def test_unknown_fields_are_422(make_user, path: str, body: dict) -> None:
    user = make_user()
    assert_problem(user.http.post(path, json=body), 422, "invalid")


def test_unknown_field_on_a_message_is_422_and_writes_nothing(pair) -> None:
    alice, _, chat_id = pair
    r = alice.http.post(f"/chats/{chat_id}/messages", json=text_body("x", sender="mallory"))
    assert_problem(r, 422, "invalid")
    assert alice.messages(chat_id) == []


def test_unknown_field_on_register_creates_no_user(anon) -> None:
    handle = unique_handle("extra")
    r = anon.post("/auth/register", json={"handle": handle, "password": "password1", "x": 1})
    assert_problem(r, 422, "invalid")
    r = anon.post("/auth/login", json={"handle": handle, "password": "password1"})
    assert_problem(r, 401)


def test_text_length_limit(pair) -> None:
    alice, bob, chat_id = pair
    r = alice.http.post(f"/chats/{chat_id}/messages", json=text_body("a" * (MAX_TEXT + 1)))
    assert_problem(r, 422, "invalid")
    assert bob.messages(chat_id) == []

    r = alice.http.post(f"/chats/{chat_id}/messages", json=text_body("a" * MAX_TEXT))
    assert r.status_code == 201, r.text
    # characters, not bytes: 4,096 four-byte emoji fit too
    r = alice.http.post(f"/chats/{chat_id}/messages", json=text_body("🎙" * MAX_TEXT))
    assert r.status_code == 201, r.text
    texts = [m["text"] for m in bob.messages(chat_id)]
    assert texts == ["a" * MAX_TEXT, "🎙" * MAX_TEXT]


def test_json_body_over_64_kib_is_413(pair) -> None:
    alice, _, chat_id = pair
    # valid JSON with a short text, padded with whitespace beyond the limit: only the size is wrong
    raw = json.dumps(text_body("padded")).encode()
    raw = raw[:-1] + b" " * (MAX_JSON + 100 - len(raw)) + b"}"
    r = alice.http.post(
        f"/chats/{chat_id}/messages", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(r, 413, "payload_too_large")
    assert alice.messages(chat_id) == []


def test_json_body_over_64_kib_without_content_length_is_413(pair) -> None:
    alice, _, chat_id = pair
    raw = json.dumps(text_body("x" * 100, pad="p" * (MAX_JSON + 1000))).encode()

    def chunks() -> Iterator[bytes]:  # chunked transfer encoding: no Content-Length
        for i in range(0, len(raw), 8192):
            yield raw[i : i + 8192]

    r = alice.http.post(
        f"/chats/{chat_id}/messages", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(r, 413, "payload_too_large")
    assert alice.messages(chat_id) == []


def test_body_just_under_the_limit_is_accepted(pair) -> None:
    alice, _, chat_id = pair
    raw = json.dumps(text_body("fits")).encode()
    raw = raw[:-1] + b" " * (MAX_JSON - len(raw)) + b"}"
    assert len(raw) == MAX_JSON
    r = alice.http.post(
        f"/chats/{chat_id}/messages", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text


NO_SUCH_ID = "01HNOSUCHTHING000000000000"


ID_ROUTES = [
    ("GET", "/chats/{x}", None),
    ("GET", "/chats/{x}/messages", None),
    ("POST", "/chats/{x}/messages", text_body("x")),
    ("POST", "/chats/{x}/members", {"handle": "someone"}),
    ("DELETE", "/chats/{x}/members/someone", None),
    ("POST", "/chats/{x}/read", {"up_to": NO_SUCH_ID}),
    ("DELETE", "/messages/{x}?scope=me", None),
    ("DELETE", "/messages/{x}?scope=everyone", None),
    ("PUT", "/messages/{x}/star", None),
    ("DELETE", "/messages/{x}/star", None),
    ("POST", "/messages/{x}/forward", {"chat_ids": [NO_SUCH_ID]}),
    ("GET", "/users/{x}", None),
]


@pytest.mark.parametrize(
    "bad_id",
    [NO_SUCH_ID, "nope", "' OR 1=1 --", "%2e%2e", "9" * 300],
    ids=["ulid-like", "word", "sql", "dotdot", "long"],
)
def test_unknown_ids_are_404(make_user, bad_id: str) -> None:
    user = make_user()
    wrong = []
    for method, path, body in ID_ROUTES:
        r = user.http.request(method, path.replace("{x}", bad_id), json=body)
        try:
            assert_problem(r, 404, "not_found")
        except AssertionError as e:
            wrong.append(str(e).splitlines()[0])
    assert not wrong, "\n".join(wrong)


def test_other_users_ids_are_404(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = alice.send(chat_id, "ours")
    for method, path, body in [
        ("GET", f"/chats/{chat_id}", None),
        ("GET", f"/chats/{chat_id}/messages", None),
        ("POST", f"/chats/{chat_id}/messages", text_body("intruder")),
        ("POST", f"/chats/{chat_id}/read", {"up_to": msg["id"]}),
        ("DELETE", f"/messages/{msg['id']}?scope=me", None),
        ("DELETE", f"/messages/{msg['id']}?scope=everyone", None),
        ("PUT", f"/messages/{msg['id']}/star", None),
        ("POST", f"/messages/{msg['id']}/forward", {"chat_ids": [eve.self_chat()["id"]]}),
    ]:
        assert_problem(eve.http.request(method, path, json=body), 404, "not_found")
    [m] = bob.messages(chat_id)
    assert m["text"] == "ours" and m["deleted"] is False


def test_unknown_route_is_a_problem_404(make_user) -> None:
    user = make_user()
    assert_problem(user.http.get("/no/such/route"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/me"),
        ("GET", "/chats"),
        ("POST", "/chats"),
        ("GET", "/starred"),
        ("POST", "/invites"),
        ("POST", "/auth/logout"),
        ("GET", "/events?after=0&timeout=0"),
        ("GET", f"/chats/{NO_SUCH_ID}/messages"),
        ("DELETE", f"/messages/{NO_SUCH_ID}?scope=me"),
    ],
)
def test_missing_token_is_401(server, method: str, path: str) -> None:
    with server.client() as c:
        assert_problem(c.request(method, path, json={}), 401, "unauthorized")
    with server.client("garbage") as c:
        assert_problem(c.request(method, path, json={}), 401, "unauthorized")
    with server.client() as c:
        r = c.request(method, path, json={}, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert_problem(r, 401, "unauthorized")
