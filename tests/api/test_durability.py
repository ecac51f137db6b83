"""A message answered 201 is durable: kill -9 right after, restart, it is there and its
`message.created` event replays on resume (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import signal

import httpx

from support.api import client_id, make_user_on


def reconnect(*users) -> None:
    """Fresh HTTP clients after a restart (the pooled connections died with the server)."""
    for u in users:
        u.http.close()
        u.http = u.server.client(u.token)


async def test_message_survives_kill_9_and_its_event_replays(make_server) -> None:
    srv = make_server()
    alice, bob = make_user_on(srv), make_user_on(srv)
    chat_id = alice.direct_with(bob)
    sent = [alice.send(chat_id, f"durable {i}")["id"] for i in range(5)]

    srv.kill(signal.SIGKILL)  # right after the last 201
    assert not srv.running
    srv.restart()
    reconnect(alice, bob)

    assert [m["id"] for m in bob.messages(chat_id)] == sent
    async with bob.events(after=0) as ev:
        created = [e["data"]["id"] for e in ev.replayed if e["type"] == "message.created"]
    assert created == sent
    # the token issued before the crash still works, and the server takes new messages
    alice.send(chat_id, "after the crash")
    for u in (alice, bob):
        u.http.close()


async def test_every_201_survives_kill_9_during_concurrent_sends(make_server) -> None:
    srv = make_server()
    alice, bob = make_user_on(srv), make_user_on(srv)
    chat_id = alice.direct_with(bob)
    accepted: list[str] = []
    enough = asyncio.Event()

    async def sender(c: httpx.AsyncClient, n: int) -> None:
        i = 0
        while True:
            body = {"client_id": client_id(), "kind": "text", "text": f"s{n}-{i}"}
            try:
                r = await c.post(f"/chats/{chat_id}/messages", json=body)
            except httpx.TransportError:
                return  # the server is gone
            if r.status_code != 201:
                return
            accepted.append(r.json()["id"])
            if len(accepted) >= 40:
                enough.set()
            i += 1

    async with alice.async_http(timeout=10) as c:
        tasks = [asyncio.create_task(sender(c, n)) for n in range(6)]
        await asyncio.wait_for(enough.wait(), 30)
        srv.kill(signal.SIGKILL)  # with requests in flight
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    srv.restart()
    reconnect(alice, bob)

    stored = [m["id"] for m in bob.messages(chat_id, limit=200)]
    missing = set(accepted) - set(stored)
    assert not missing, f"{len(missing)} messages answered 201 are gone: {sorted(missing)}"
    assert len(stored) == len(set(stored))
    async with bob.events(after=0) as ev:
        created = {e["data"]["id"] for e in ev.replayed if e["type"] == "message.created"}
    assert set(stored) <= created, "a stored message without its message.created event"
    for u in (alice, bob):
        u.http.close()
