"""Realtime: live events over the WebSocket, resume without gaps or repeats, the long-poll
fallback, presence (live, never logged), chat and membership events."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support.api import assert_problem, ok
from support.events import EventStream, EventStreamClosed, seqs


def created_for(message_id: str):
    return lambda e: e["data"]["id"] == message_id


async def test_message_created_reaches_every_member_live(make_user) -> None:
    alice, bob, carol, eve = make_user(), make_user(), make_user(), make_user()
    chat_id = alice.group("Live", bob, carol)
    async with bob.events() as bob_ev, carol.events() as carol_ev, eve.events() as eve_ev:
        msg = alice.send(chat_id, "live!")
        for ev in (bob_ev, carol_ev):
            event = await ev.next_event("message.created", where=created_for(msg["id"]))
            assert isinstance(event["seq"], int) and event["seq"] > ev.ready_seq
            data = event["data"]
            assert data["chat_id"] == chat_id
            assert data["sender"] == alice.handle
            assert data["text"] == "live!"
            assert data["kind"] == "text"
        await eve_ev.assert_no_event("message.created")


async def test_resume_replays_exactly_the_missed_events_in_order(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    async with alice.events() as ev:
        last_seen = ev.ready_seq
    assert isinstance(last_seen, int)

    sent = [bob.send(chat_id, f"missed {i}")["id"] for i in range(20)]

    async with alice.events(after=last_seen) as ev:
        missed = ev.replayed
        ready = ev.ready_seq
        created = [e for e in missed if e["type"] == "message.created"]
        assert [e["data"]["id"] for e in created] == sent
        assert [e["data"]["text"] for e in created] == [f"missed {i}" for i in range(20)]
        assert all(s > last_seen for s in seqs(missed))
        assert seqs(missed) == sorted(set(seqs(missed))), "out of order or repeated"
        assert ready == missed[-1]["seq"]

        # nothing of the replay comes again live; the next message arrives once, after ready
        more = bob.send(chat_id, "live after resume")
        live = await ev.next_event("message.created")
        assert live["data"]["id"] == more["id"]
        assert live["seq"] > ready
        await ev.assert_no_event("message.created")

    # the full log, replayed from 0, agrees: the resume was its exact suffix
    async with alice.events(after=0) as ev:
        full = ev.replayed
    assert seqs(full) == sorted(set(seqs(full)))
    assert [e for e in full if last_seen < e["seq"] <= ready] == missed

    # resuming from the middle gives the rest, nothing twice
    middle = created[9]["seq"]
    async with alice.events(after=middle) as ev:
        rest = [e["data"]["id"] for e in ev.replayed if e["type"] == "message.created"]
    assert rest == [*sent[10:], more["id"]]


async def test_resume_while_messages_keep_coming_misses_nothing(make_user) -> None:
    """Messages posted while the client replays land either in the replay or live, once."""
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    start = alice.latest_seq()
    sent: list[str] = []
    some_sent = threading.Event()

    def post_all() -> None:
        for i in range(30):
            sent.append(bob.send(chat_id, f"stream {i}")["id"])
            if i == 5:
                some_sent.set()

    poster = asyncio.create_task(asyncio.to_thread(post_all))
    assert await asyncio.to_thread(some_sent.wait, 10)
    async with alice.events(after=start) as ev:  # replay while bob keeps posting
        got = [e for e in ev.replayed if e["type"] == "message.created"]
        await poster
        while sent[-1] not in {e["data"]["id"] for e in got}:
            got.append(await ev.next_event("message.created"))
        await ev.assert_no_event("message.created")
    assert [e["data"]["id"] for e in got] == sent
    assert seqs(got) == sorted(set(seqs(got)))


async def test_each_user_has_their_own_log(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = alice.send(chat_id, "not for eve")
    async with eve.events(after=0) as ev:
        assert all(e["data"].get("id") != msg["id"] for e in ev.replayed)
        assert all(e["data"].get("chat_id") != chat_id for e in ev.replayed)
    async with bob.events(after=0) as ev:
        ids = [e["data"].get("id") for e in ev.replayed if e["type"] == "message.created"]
        assert ids == [msg["id"]]


async def test_a_seq_past_the_end_of_the_log_is_reset_to_its_end(make_user) -> None:
    """A client that remembers a later seq than the server has (a restored server) is told
    to drop its state, and then gets live events from the log's end."""
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    end = alice.latest_seq()
    async with alice.events(after=end + 500) as ev:
        assert ev.ready_reset and ev.ready_seq == end and ev.replayed == []
        msg = bob.send(chat_id, "after the reset")
        created = await ev.next_event("message.created")
    assert created["data"]["id"] == msg["id"] and created["seq"] == end + 1
    async with alice.events(after=end + 1) as ev:
        assert not ev.ready_reset
    body = ok(alice.http.get("/events", params={"after": end + 500, "timeout": 5}, timeout=3))
    assert body == {"events": [], "seq": end + 1, "reset": True}


@pytest.mark.parametrize("after", [2**53 + 1, 2**63, 2**64, 10**30])
async def test_a_position_above_2_53_is_invalid(make_user, after: int) -> None:
    """Beyond 2^53 a seq is no position (JavaScript cannot even hold it): a 422, never a 500
    from a 64-bit overflow; on the WebSocket an error frame, then the socket closes."""
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    r = alice.http.get("/events", params={"after": after, "timeout": 0})
    assert_problem(r, 422, "invalid")
    async with connect(alice.server.ws_url, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "auth", "token": alice.token}))
        await ws.send(json.dumps({"type": "resume", "after": after}))
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    frames.append(json.loads(await ws.recv()))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert [(f["type"], f.get("code")) for f in frames] == [("error", "invalid")], frames

    # 2^53 itself is a position (here past the log's end: a reset), and the server is fine
    end = alice.latest_seq()
    body = ok(alice.http.get("/events", params={"after": 2**53, "timeout": 0}))
    assert body == {"events": [], "seq": end, "reset": True}
    async with alice.events(after=2**53) as ev:
        assert ev.ready_reset and ev.ready_seq == end
        msg = bob.send(chat_id, "still live")
        await ev.next_event("message.created", where=created_for(msg["id"]))


async def test_an_ack_above_2_53_is_refused_and_the_socket_goes_on(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    async with (
        alice.events(after=alice.latest_seq()) as ev,
        bob.events(after=bob.latest_seq()) as bob_ev,
    ):
        await ev.ack(2**64)
        error = await ev.next_event("error")
        assert error["code"] == "invalid", error
        msg = bob.send(chat_id, "acked properly")
        created = await ev.next_event("message.created", where=created_for(msg["id"]))
        await ev.ack(created["seq"])
        receipt = await bob_ev.next_event(
            "receipt", where=lambda e: e["data"]["message_id"] == msg["id"]
        )
    assert receipt["data"]["kind"] == "delivered"
    assert alice.handle in receipt["data"]["handles"]


async def test_long_poll_returns_at_once_when_events_exist(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    start_seq = alice.latest_seq()
    msg = bob.send(chat_id, "for the poller")

    # The client gives up long before the server's 20 s wait: only an immediate answer passes.
    body = ok(alice.http.get("/events", params={"after": start_seq, "timeout": 20}, timeout=10))
    created = [e for e in body["events"] if e["type"] == "message.created"]
    assert [e["data"]["id"] for e in created] == [msg["id"]]
    assert all(e["seq"] > start_seq for e in body["events"])
    assert body["seq"] == body["events"][-1]["seq"]


async def test_long_poll_waits_for_the_next_event(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    start_seq = alice.latest_seq()

    async with alice.async_http(timeout=30) as c:
        poll = asyncio.create_task(c.get("/events", params={"after": start_seq, "timeout": 20}))
        # Nothing to await here: give the poll a moment to park on the server, so that the
        # message below arrives while it waits (if it is late, the poll still returns at once).
        await asyncio.sleep(0.5)
        msg = await asyncio.to_thread(bob.send, chat_id, "while you wait")
        r = await asyncio.wait_for(poll, 10)  # well before the 20 s the poll would wait
    body = ok(r)
    assert msg["id"] in [e["data"].get("id") for e in body["events"]]
    assert body["seq"] > start_seq


async def test_long_poll_times_out_empty(make_user) -> None:
    alice = make_user()
    start_seq = alice.latest_seq()
    body = ok(alice.http.get("/events", params={"after": start_seq, "timeout": 1}, timeout=30))
    assert body["events"] == []
    assert body["seq"] == start_seq


async def test_presence_is_live_and_never_logged(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    async with alice.events() as a_ev, bob.events() as b_ev, eve.events() as e_ev:
        await a_ev.presence(chat_id, "typing")
        event = await b_ev.next_event("presence")
        assert "seq" not in event or event["seq"] is None
        assert event["data"] == {"chat_id": chat_id, "handle": alice.handle, "state": "typing"}

        await a_ev.presence(chat_id, "recording")
        event = await b_ev.next_event("presence")
        assert event["data"]["state"] == "recording"

        # not to outsiders, and not for a chat the sender is not in
        await e_ev.presence(chat_id, "typing")
        await e_ev.assert_no_event("presence")
        await b_ev.assert_no_event("presence", where=lambda e: e["data"]["handle"] == eve.handle)

    async with bob.events(after=0) as ev:
        assert [e for e in ev.replayed if e["type"] == "presence"] == []
    body = ok(bob.http.get("/events", params={"after": 0, "timeout": 0}))
    assert [e for e in body["events"] if e["type"] == "presence"] == []


async def test_chat_created_reaches_the_new_members(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    async with bob.events() as b_ev, carol.events() as c_ev:
        chat_id = alice.group("New group", bob)
        event = await b_ev.next_event("chat.created", where=lambda e: e["data"]["id"] == chat_id)
        assert isinstance(event["seq"], int)
        assert event["data"]["kind"] == "group"
        assert event["data"]["title"] == "New group"
        assert {m["handle"] for m in event["data"]["members"]} == {alice.handle, bob.handle}
        await c_ev.assert_no_event("chat.created")

        direct = carol.direct_with(bob)
        event = await b_ev.next_event("chat.created", where=lambda e: e["data"]["id"] == direct)
        assert event["data"]["kind"] == "direct"


async def test_membership_events(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.group("Members", bob)

    def about_chat(e: dict) -> bool:
        data = e["data"]
        return data.get("id") == chat_id or data.get("chat_id") == chat_id

    async with bob.events() as b_ev, carol.events() as c_ev:
        r = alice.http.post(f"/chats/{chat_id}/members", json={"handle": carol.handle})
        assert r.status_code == 200, r.text
        # the new member learns of the chat, the others of its new member list
        added = await c_ev.next_event(
            where=lambda e: e["type"] in ("chat.created", "chat.updated") and about_chat(e)
        )
        assert carol.handle in {m["handle"] for m in added["data"]["members"]}
        updated = await b_ev.next_event("chat.updated", where=about_chat)
        assert carol.handle in {m["handle"] for m in updated["data"]["members"]}

        r = alice.http.delete(f"/chats/{chat_id}/members/{carol.handle}")
        assert r.status_code == 204, r.text
        for ev in (c_ev, b_ev):
            removed = await ev.next_event("member.removed", where=about_chat)
            assert removed["data"] == {"chat_id": chat_id, "handle": carol.handle}
            assert isinstance(removed["seq"], int)

        # carol no longer hears the chat
        alice.send(chat_id, "carol is gone")
        await b_ev.next_event("message.created", where=about_chat)
        await c_ev.assert_no_event("message.created")


async def test_websocket_with_bad_token_gets_no_events(server) -> None:
    stream = EventStream(server.ws_url, "not-a-valid-token")
    try:
        with pytest.raises(EventStreamClosed):
            await stream.open(timeout=10)
        assert stream.ready_seq is None
    finally:
        await stream.close()


async def test_logout_closes_that_logins_sockets_at_once_and_all_logs_out_everywhere(
    make_user,
) -> None:
    alice, bob = make_user(), make_user()
    chat_id = bob.direct_with(alice)
    second = ok(
        alice.http.post("/auth/login", json={"handle": alice.handle, "password": alice.password})
    )["token"]
    phone = EventStream(alice.server.ws_url, second, after=alice.latest_seq())
    async with alice.events(after=alice.latest_seq()) as laptop, phone:
        ok(alice.http.post("/auth/logout"), 204)
        assert await laptop.closed() == 4401
        msg = bob.send(chat_id, "the phone still hears this")
        await phone.next_event("message.created", where=created_for(msg["id"]))

        assert all(e["type"] != "session.ended" for e in phone.received)  # internal only
        everywhere = {"Authorization": f"Bearer {second}"}
        r = alice.http.post("/auth/logout", params={"all": "true"}, headers=everywhere)
        assert r.status_code == 204, r.text
        assert await phone.closed() == 4401
    for token in (alice.token, second):
        headers = {"Authorization": f"Bearer {token}"}
        assert_problem(alice.http.get("/me", headers=headers), 401)
