"""The web app's session cookie and its CSRF protection (an Origin check on unsafe methods)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support.api import assert_problem, client_id, ok, unique_handle

COOKIE = "voxbox_session"
FOREIGN = "http://evil.example"


def origin_of(server) -> str:
    return server.url  # http://127.0.0.1:PORT


def parse_set_cookie(r: httpx.Response) -> SimpleCookie:
    headers = r.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    jar = SimpleCookie()
    jar.load(headers[0])
    assert COOKIE in jar, headers
    return jar


@pytest.fixture
def session(server, make_user) -> Iterator[tuple[object, httpx.Client, str]]:
    """(user, a client holding only the session cookie, the cookie's token)."""
    user = make_user()
    with server.client() as c:
        r = c.post(
            "/auth/login",
            params={"session": "cookie"},
            json={"handle": user.handle, "password": user.password},
        )
        token = ok(r)["token"]
        assert c.cookies.get(COOKIE) == token  # an ordinary cookie jar keeps it
        yield user, c, token


def test_login_with_session_cookie_sets_an_httponly_cookie(server, make_user) -> None:
    user = make_user()
    with server.client() as c:
        r = c.post(
            "/auth/login",
            params={"session": "cookie"},
            json={"handle": user.handle, "password": user.password},
        )
    body = ok(r)
    assert set(body) == {"user", "token"}
    morsel = parse_set_cookie(r)[COOKIE]
    assert morsel.value == body["token"]
    assert morsel["httponly"]
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert 399 * 86400 <= int(morsel["max-age"]) <= 400 * 86400
    assert not morsel["secure"]  # plain http here


def test_login_and_register_without_the_parameter_set_no_cookie(server, make_user) -> None:
    user = make_user()
    with server.client() as c:
        r = c.post("/auth/login", json={"handle": user.handle, "password": user.password})
        assert ok(r)["token"]
        assert "set-cookie" not in r.headers


def test_register_with_session_cookie_sets_the_cookie(server) -> None:
    with server.client() as c:
        r = c.post(
            "/auth/register",
            params={"session": "cookie"},
            json={"handle": unique_handle(), "password": "correct horse battery"},
        )
        body = ok(r, 201)
        assert parse_set_cookie(r)[COOKIE].value == body["token"]
        me = ok(c.get("/me"))  # the cookie alone authenticates
        assert me["handle"] == body["user"]["handle"]


def test_the_cookie_is_not_set_for_a_foreign_page(server, make_user) -> None:
    user = make_user()
    with server.client() as c:
        r = c.post(
            "/auth/login",
            params={"session": "cookie"},
            json={"handle": user.handle, "password": user.password},
            headers={"Origin": FOREIGN},
        )
    body = assert_problem(r, 403, "forbidden")
    assert "cross-origin" in body["detail"].lower()
    assert "set-cookie" not in r.headers


def test_the_cookie_authenticates_safe_requests_without_origin(session) -> None:
    user, c, _ = session
    assert ok(c.get("/me"))["handle"] == user.handle
    assert ok(c.get("/chats"))["chats"]
    assert "authorization" not in {k.lower() for k in c.headers}


def test_unsafe_request_by_cookie_without_origin_is_403(session) -> None:
    user, c, _ = session
    chat_id = user.self_chat()["id"]
    body = {"client_id": client_id(), "kind": "text", "text": "hi"}
    r = c.post(f"/chats/{chat_id}/messages", json=body)
    problem = assert_problem(r, 403, "forbidden")
    assert "cross-origin request" in problem["detail"].lower()
    assert "refused" in problem["detail"].lower()
    assert user.messages(chat_id) == []  # nothing was done


@pytest.mark.parametrize(
    "origin",
    [FOREIGN, "null", "http://127.0.0.1:1", "https://127.0.0.1", "http://localhost"],
)
def test_unsafe_request_by_cookie_from_another_origin_is_403(server, session, origin) -> None:
    user, c, _ = session
    chat_id = user.self_chat()["id"]
    body = {"client_id": client_id(), "kind": "text", "text": "hi"}
    r = c.post(f"/chats/{chat_id}/messages", json=body, headers={"Origin": origin})
    assert_problem(r, 403, "forbidden")
    r = c.delete(f"/messages/{'0' * 26}", headers={"Origin": origin})
    assert_problem(r, 403, "forbidden")
    assert user.messages(chat_id) == []


def test_unsafe_request_by_cookie_from_our_own_origin_works(server, session) -> None:
    user, c, _ = session
    chat_id = user.self_chat()["id"]
    body = {"client_id": client_id(), "kind": "text", "text": "hi"}
    r = c.post(f"/chats/{chat_id}/messages", json=body, headers={"Origin": origin_of(server)})
    assert ok(r, 201)["text"] == "hi"


def test_bearer_requests_need_no_origin(make_user) -> None:
    user = make_user()
    chat_id = user.self_chat()["id"]
    plain = user.http.post(
        f"/chats/{chat_id}/messages", json={"client_id": client_id(), "kind": "text", "text": "a"}
    )
    ok(plain, 201)
    foreign = user.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "text", "text": "b"},
        headers={"Origin": FOREIGN},
    )
    ok(foreign, 201)


def test_bearer_wins_over_the_cookie(server, make_user, session) -> None:
    _, c, _ = session
    other = make_user()
    r = c.get("/me", headers={"Authorization": f"Bearer {other.token}"})
    assert ok(r)["handle"] == other.handle
    bad = c.get("/me", headers={"Authorization": "Bearer nonsense"})
    assert_problem(bad, 401)


def test_a_bad_cookie_is_401(server) -> None:
    with server.client(cookies={COOKIE: "not-a-token"}) as c:
        assert_problem(c.get("/me"), 401)
    with server.client() as c:
        assert_problem(c.get("/me"), 401)


def test_logout_by_cookie_revokes_the_token_and_clears_the_cookie(server, session) -> None:
    _, c, token = session
    refused = c.post("/auth/logout")  # a logout is a state change too
    assert_problem(refused, 403, "forbidden")
    r = c.post("/auth/logout", headers={"Origin": origin_of(server)})
    assert r.status_code == 204, r.text
    morsel = parse_set_cookie(r)[COOKIE]
    assert morsel.value == ""
    assert int(morsel["max-age"]) == 0
    assert c.cookies.get(COOKIE) is None
    with server.client(cookies={COOKIE: token}) as stale:
        assert_problem(stale.get("/me"), 401)
    with server.client(token) as bearer:
        assert_problem(bearer.get("/me"), 401)


def test_logout_by_bearer_sets_no_cookie(make_user) -> None:
    user = make_user()
    r = user.http.post("/auth/logout")
    assert r.status_code == 204
    assert "set-cookie" not in r.headers


async def test_long_poll_with_the_cookie(server, session) -> None:
    user, _, token = session
    user.send(user.self_chat()["id"], "polled")
    async with server.async_client(cookies={COOKIE: token}) as c:
        r = await c.get("/events", params={"after": 0, "timeout": 0})
    events = ok(r)["events"]
    assert any(e["type"] == "message.created" and e["data"]["text"] == "polled" for e in events), (
        events
    )


async def _ws_ready(server, headers: dict[str, str], frames: list[dict]) -> dict:
    """Connect with `headers`, send `frames`, return the first frame that is not replay."""
    async with connect(server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        for frame in frames:
            await ws.send(json.dumps(frame))
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await ws.recv())
                if "seq" not in frame or frame.get("type") == "ready":
                    return frame


async def test_websocket_authenticated_by_the_cookie(server, session) -> None:
    user, _, token = session
    headers = {"Cookie": f"{COOKIE}={token}", "Origin": origin_of(server)}
    async with connect(server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        async with asyncio.timeout(10):
            while json.loads(await ws.recv()).get("type") != "ready":
                pass
        sent = user.send(user.self_chat()["id"], "live")
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "message.created":
                    assert frame["data"]["id"] == sent["id"]
                    break


async def test_websocket_auth_frame_still_works_with_a_cookie(server, session, make_user) -> None:
    _, _, token = session
    other = make_user()
    headers = {"Cookie": f"{COOKIE}={token}", "Origin": FOREIGN}
    frames = [{"type": "auth", "token": other.token}, {"type": "resume", "after": 0}]
    ready = await _ws_ready(server, headers, frames)
    assert ready["type"] == "ready"


@pytest.mark.parametrize("origin", [FOREIGN, None])
async def test_websocket_with_the_cookie_from_another_origin_is_refused(
    server, session, origin
) -> None:
    _, _, token = session
    headers = {"Cookie": f"{COOKIE}={token}"}
    if origin is not None:
        headers["Origin"] = origin
    async with connect(server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    frames.append(json.loads(await ws.recv()))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert all(f.get("type") == "error" for f in frames), frames


async def test_websocket_resume_without_auth_or_cookie_is_refused(server) -> None:
    async with connect(server.ws_url, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_auth_config_tells_the_registration_mode(server, make_server) -> None:
    with server.client() as c:
        assert ok(c.get("/auth/config")) == {"registration": "open"}
    closed = make_server(registration="closed")
    with closed.client() as c:
        assert ok(c.get("/auth/config")) == {"registration": "closed"}


def test_forwarded_headers_count_only_behind_a_trusted_proxy(server, make_server) -> None:
    """With trust_forwarded_for, the origin is X-Forwarded-Proto + X-Forwarded-Host (and an
    https cookie is Secure); without it, those headers change nothing."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voxbox.example"}
    cases = [(server, False), (make_server(trust_forwarded_for="true"), True)]
    for srv, trusted in cases:
        handle, password = unique_handle(), "correct horse battery"
        with srv.client() as c:
            r = c.post(
                "/auth/register",
                params={"session": "cookie"},
                json={"handle": handle, "password": password},
                headers=forwarded,
            )
            body = ok(r, 201)
            assert bool(parse_set_cookie(r)[COOKIE]["secure"]) is trusted
        with srv.client(cookies={COOKIE: body["token"]}) as c:
            chat_id = next(x["id"] for x in ok(c.get("/chats"))["chats"] if x["kind"] == "self")
            message = {"client_id": client_id(), "kind": "text", "text": "hi"}
            r = c.post(
                f"/chats/{chat_id}/messages",
                json=message,
                headers={**forwarded, "Origin": "https://voxbox.example"},
            )
            if trusted:
                ok(r, 201)
            else:
                assert_problem(r, 403, "forbidden")
                r = c.post(
                    f"/chats/{chat_id}/messages",
                    json=message,
                    headers={**forwarded, "Origin": srv.url},
                )
                ok(r, 201)
