"""Live delivery with a backstop (issue 10): the bus is not trusted to bring everything. Every
socket gets a heartbeat after the server reads the user's log, so an event committed but never
published (its worker died, Redis dropped the connection) still arrives within the heartbeat."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis

from support.api import client_id, login_on, make_user_on, ok
from support.backends import REDIS_URL
from voxbox.events.bus import shard_of


async def test_an_idle_socket_gets_heartbeats_carrying_its_seq(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(limits__heartbeat_seconds=0.3)
    alice = make_user_on(srv)
    async with alice.events() as ws:
        beats = [await ws.next_heartbeat(), await ws.next_heartbeat()]
        assert [b["seq"] for b in beats] == [ws.ready_seq, ws.ready_seq]
        assert ws.received == []  # no event came, and heartbeats are not events


postgres_only = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def unpublished_post(server_without_bus, author, chat_id: str, text: str) -> dict:  # type: ignore[no-untyped-def]
    """A message committed to the shared database by a worker whose events reach no one else:
    as if its worker died between commit and publish."""
    lone = login_on(server_without_bus, author.handle, author.password)
    body = {"client_id": client_id(), "kind": "text", "text": text}
    return body | {"id": ok(lone.http.post(f"/chats/{chat_id}/messages", json=body), 201)["id"]}


@postgres_only
async def test_a_commit_the_bus_never_brought_arrives_within_the_heartbeat(make_server) -> None:  # type: ignore[no-untyped-def]
    a = make_server(limits__heartbeat_seconds=1)
    lone = make_server(share_store_with=a, redis_url=None)  # publishes to its own process only
    alice, bob = make_user_on(a), make_user_on(a)
    chat_id = alice.direct_with(bob)
    async with alice.events() as ws:
        sent = unpublished_post(lone, bob, chat_id, "never published")
        event = await ws.next_event("message.created", timeout=5)
        assert event["data"]["id"] == sent["id"]
        beat = await ws.next_heartbeat()
        assert beat["seq"] == event["seq"]


@postgres_only
async def test_a_retried_send_makes_sure_its_message_was_published(make_server) -> None:  # type: ignore[no-untyped-def]
    a = make_server(limits__heartbeat_seconds=60)  # only the retry can bring it soon
    lone = make_server(share_store_with=a, redis_url=None)
    alice, bob = make_user_on(a), make_user_on(a)
    chat_id = alice.direct_with(bob)
    async with alice.events() as ws:
        sent = unpublished_post(lone, bob, chat_id, "committed, then the worker died")
        await ws.assert_no_event("message.created", within=1.0)
        # Bob's app did not get its answer, and sends again (same client_id) to worker A.
        body = {k: sent[k] for k in ("client_id", "kind", "text")}
        again = ok(bob.http.post(f"/chats/{chat_id}/messages", json=body), 200)
        assert again["id"] == sent["id"]
        event = await ws.next_event("message.created", timeout=5)
        assert event["data"]["id"] == sent["id"]


@postgres_only
async def test_after_the_bus_reconnects_every_socket_catches_up(make_server) -> None:  # type: ignore[no-untyped-def]
    a = make_server(limits__heartbeat_seconds=60)  # only the reconnect can bring it soon
    alice, bob = make_user_on(a), make_user_on(a)
    chat_id = alice.direct_with(bob)
    async with alice.events() as ws:
        with redis.Redis.from_url(REDIS_URL) as r:
            assert r.client_kill_filter(_type="pubsub") >= 1  # every subscriber's connection
        sent = bob.send(chat_id, "while the bus was down")
        event = await ws.next_event("message.created", timeout=10)
        assert event["data"]["id"] == sent["id"]


def channels(prefix: str) -> set[str]:
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r:
        return set(r.pubsub_channels(f"{prefix}:events:*"))


async def wait_for_channels(prefix: str, expected: set[str]) -> None:
    """Subscriptions are Redis' state, with no event to await: look until they match."""
    deadline = asyncio.get_running_loop().time() + 10
    while channels(prefix) != expected:
        assert asyncio.get_running_loop().time() < deadline, (channels(prefix), expected)
        await asyncio.sleep(0.05)


@postgres_only
async def test_a_worker_listens_only_to_the_users_whose_sockets_it_holds(make_server) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{secrets.token_hex(4)}"
    a = make_server(redis_prefix=prefix)
    alice = make_user_on(a)
    assert channels(prefix) == set()
    async with alice.events():
        await wait_for_channels(prefix, {f"{prefix}:events:{shard_of(alice.id)}"})
    await wait_for_channels(prefix, set())


@postgres_only
async def test_two_deployments_on_one_redis_never_see_each_others_events(make_server) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = f"t{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    a = make_server(redis_prefix=ours)
    make_server(redis_prefix=theirs)  # another deployment: its own database, the same Redis
    alice, bob = make_user_on(a), make_user_on(a)
    chat_id = alice.direct_with(bob)
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r, r.pubsub() as spy:
        spy.psubscribe("*")  # everything published on this Redis
        spy.get_message(timeout=1)  # the psubscribe confirmation
        async with alice.events() as ws:
            sent = bob.send(chat_id, "for this deployment only")
            await ws.next_event("message.created", where=lambda e: e["data"]["id"] == sent["id"])
        published = []
        while (message := spy.get_message(timeout=0.5)) is not None:
            published.append(message["channel"])
    assert published, "the spy saw the events"
    assert all(channel.startswith(f"{ours}:events:") for channel in published), published
