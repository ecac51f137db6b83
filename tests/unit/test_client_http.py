"""VoxboxClient request shaping and error parsing, against httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from voxbox.client import VoxboxAPIError, VoxboxClient

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, token: str | None = "tok") -> VoxboxClient:
    return VoxboxClient("http://voxbox.test/", token, transport=httpx.MockTransport(handler))


def recording(
    response: httpx.Response,
) -> tuple[list[httpx.Request], Handler]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return response

    return requests, handler


def problem(status: int, code: str, title: str, detail: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return httpx.Response(
        status,
        json=body | {"code": code},
        headers={"content-type": "application/problem+json", **headers},
    )


def test_problem_json_becomes_api_error() -> None:
    _, handler = recording(problem(404, "not_found", "Not Found", "no such chat"))
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.chat("c1")
    error = caught.value
    assert (error.status, error.code, error.title, error.detail) == (
        404,
        "not_found",
        "Not Found",
        "no such chat",
    )
    assert error.retry_after is None


def test_retry_after_seconds_and_http_date() -> None:
    _, handler = recording(
        problem(429, "rate_limited", "Too Many Requests", "", **{"Retry-After": "7"})
    )
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.me()
    assert caught.value.retry_after == 7.0

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    _, handler = recording(
        problem(429, "rate_limited", "Too Many Requests", "", **{"Retry-After": later})
    )
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.me()
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


def test_non_json_error_falls_back_to_status() -> None:
    html = httpx.Response(
        502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}
    )
    _, handler = recording(html)
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.chats()
    assert (caught.value.status, caught.value.code) == (502, "error")
    assert caught.value.title == "Bad Gateway"
    assert caught.value.detail == ""

    plain = httpx.Response(401, text="token expired\n", headers={"content-type": "text/plain"})
    _, handler = recording(plain)
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.chats()
    assert (caught.value.code, caught.value.title) == ("unauthorized", "Unauthorized")
    assert caught.value.detail == "token expired"

    # Another kind of server (python -m http.server answers a POST like this)
    other = httpx.Response(
        501, text="<html>Unsupported method ('POST')</html>", headers={"content-type": "text/html"}
    )
    _, handler = recording(other)
    with make_client(handler) as client, pytest.raises(VoxboxAPIError) as caught:
        client.login("ann", "password")
    assert "is this the address of a voxbox server?" in str(caught.value)


def test_requests_use_api_prefix_and_bearer_token() -> None:
    requests, handler = recording(httpx.Response(200, json={"chats": []}))
    with make_client(handler) as client:
        assert client.chats() == {"chats": []}
    assert requests[0].url == "http://voxbox.test/api/v1/chats"
    assert requests[0].headers["authorization"] == "Bearer tok"


def test_login_sets_token_and_logout_clears_it() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.url.path == "/api/v1/auth/login":
            assert json.loads(request.content) == {"handle": "ann", "password": "pw123456"}
            return httpx.Response(200, json={"user": {"handle": "ann"}, "token": "new"})
        return httpx.Response(204)

    with make_client(handler, token=None) as client:
        client.login("ann", "pw123456")
        assert client.token == "new"
        client.logout()
        assert client.token is None
    assert seen == [None, "Bearer new"]


def test_send_text_generates_client_id_once_per_call() -> None:
    requests, handler = recording(httpx.Response(201, json={"id": "m1"}))
    with make_client(handler) as client:
        client.send_text("c1", "hi")
        client.send_text("c1", "hi")
        client.send_text("c1", "hi", client_id="mine", reply_to="m0")
    bodies = [json.loads(r.content) for r in requests]
    generated = [b["client_id"] for b in bodies[:2]]
    assert all(len(c) == 32 and int(c, 16) >= 0 for c in generated)
    assert generated[0] != generated[1]
    assert bodies[2] == {"client_id": "mine", "kind": "text", "text": "hi", "reply_to": "m0"}
    assert requests[0].url.path == "/api/v1/chats/c1/messages"


def test_unset_query_parameters_are_not_sent() -> None:
    requests, handler = recording(httpx.Response(200, json={"messages": [], "has_more": False}))
    with make_client(handler) as client:
        client.messages("c1", before="m9")
    assert dict(requests[0].url.params) == {"before": "m9"}


def test_path_segments_are_quoted() -> None:
    requests, handler = recording(httpx.Response(200, json={"handle": "x"}))
    with make_client(handler) as client:
        client.user("../admin")
    assert requests[0].url.raw_path == b"/api/v1/users/..%2Fadmin"


def test_search_inbox_and_my_choices() -> None:
    requests, handler = recording(httpx.Response(200, json={"results": [], "has_more": False}))
    with make_client(handler) as client:
        client.search("umbrella sunday", kind="voice", before="2026-12-01T00:00:00+01:00")
        client.search("x", chat_id="c1", limit=5)
        client.inbox()
        client.update_me(transcribe=False)
    first, second, inbox, me = requests
    assert first.url.path == "/api/v1/search"
    assert dict(first.url.params) == {
        "q": "umbrella sunday", "kind": "voice", "before": "2026-12-01T00:00:00+01:00"
    }  # fmt: skip
    assert dict(second.url.params) == {"q": "x", "chat_id": "c1", "limit": "5"}
    assert inbox.url.path == "/api/v1/inbox" and not inbox.url.params
    assert (me.method, me.url.path) == ("PATCH", "/api/v1/me")
    assert json.loads(me.content) == {"transcribe": False}
