"""resolve_chat: which chat a CLI chat argument names."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from voxbox.client import ChatRefError, VoxboxClient, resolve_chat

CHATS: list[dict[str, Any]] = [
    {"id": "c-self", "kind": "self", "title": None, "members": [{"handle": "ann"}]},
    {
        "id": "c-bob",
        "kind": "direct",
        "title": None,
        "members": [{"handle": "ann"}, {"handle": "bob"}],
    },
    {"id": "c-fam", "kind": "group", "title": "family", "members": []},
    {"id": "c-w1", "kind": "group", "title": "work", "members": []},
    {"id": "c-w2", "kind": "group", "title": "work", "members": []},
    {"id": "c-cat", "kind": "group", "title": "cat", "members": []},
]
USERS = {"bob", "cat", "self"}


class FakeServer:
    """Answers GET /chats from CHATS and POST /chats (direct) for the handles in USERS."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/chats":
            return httpx.Response(200, json={"chats": CHATS})
        if request.method == "POST" and request.url.path == "/api/v1/chats":
            handle = json.loads(request.content)["handle"]
            if handle not in USERS:
                return httpx.Response(404, json={"title": "Not Found", "code": "not_found"})
            self.created.append(handle)
            return httpx.Response(201, json={"id": f"direct-{handle}", "kind": "direct"})
        return httpx.Response(500)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer) -> VoxboxClient:
    return VoxboxClient("http://voxbox.test", "tok", transport=httpx.MockTransport(server))


@pytest.mark.parametrize(
    ("ref", "chat_id"),
    [("self", "c-self"), ("ME", "c-self"), ("c-bob", "c-bob"), ("family", "c-fam")],
)
def test_resolves_without_creating(
    client: VoxboxClient, server: FakeServer, ref: str, chat_id: str
) -> None:
    assert resolve_chat(client, ref)["id"] == chat_id
    assert server.created == []


def test_handle_means_direct_chat(client: VoxboxClient, server: FakeServer) -> None:
    assert resolve_chat(client, "Bob")["id"] == "direct-bob"
    assert server.created == ["bob"]


def test_group_title_wins_over_handle_unless_at(client: VoxboxClient, server: FakeServer) -> None:
    assert resolve_chat(client, "cat")["id"] == "c-cat"
    assert resolve_chat(client, "@cat")["id"] == "direct-cat"
    assert resolve_chat(client, "@self")["id"] == "direct-self"
    assert server.created == ["cat", "self"]


def test_ambiguous_title(client: VoxboxClient) -> None:
    with pytest.raises(ChatRefError) as caught:
        resolve_chat(client, "work")
    assert caught.value.title == "Ambiguous chat"
    assert "c-w1" in caught.value.detail and "c-w2" in caught.value.detail


@pytest.mark.parametrize("ref", ["nobody", "not a handle", "@x"])
def test_unknown(client: VoxboxClient, ref: str) -> None:
    with pytest.raises(ChatRefError) as caught:
        resolve_chat(client, ref)
    assert caught.value.title == "Unknown chat"


@pytest.mark.parametrize(
    ("ref", "chat_id"),
    [("bob", "c-bob"), ("@Bob", "c-bob"), ("@ann", "c-self"), ("cat", "c-cat"), ("me", "c-self")],
)
def test_a_reading_command_finds_only_existing_chats(
    client: VoxboxClient, server: FakeServer, ref: str, chat_id: str
) -> None:
    assert resolve_chat(client, ref, create=False)["id"] == chat_id
    assert server.created == []


def test_a_reading_command_starts_no_chat(client: VoxboxClient, server: FakeServer) -> None:
    with pytest.raises(ChatRefError) as caught:
        resolve_chat(client, "@cat", create=False)  # a user, but no direct chat with them
    assert caught.value.title == "Unknown chat" and "no chat with 'cat'" in caught.value.detail
    assert server.created == []
