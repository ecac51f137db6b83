"""Receipts: read (POST /chats/{id}/read) and delivered (WebSocket ack, or fetching)."""

from __future__ import annotations

from support.api import TIMESTAMP, assert_problem


def receipt_for(message_id: str, kind: str, handle: str):
    def match(e: dict) -> bool:
        d = e["data"]
        return d["message_id"] == message_id and d["kind"] == kind and d["handle"] == handle

    return match


def unread(user, chat_id: str) -> int:
    return {c["id"]: c for c in user.chats()}[chat_id]["unread_count"]


async def test_read_receipt_reaches_sender_and_clears_unread(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    bob.send(chat_id, "one")
    last = bob.send(chat_id, "two")
    assert unread(alice, chat_id) == 2

    async with bob.events() as ev:
        r = alice.http.post(f"/chats/{chat_id}/read", json={"up_to": last["id"]})
        assert r.status_code == 204, r.text
        event = await ev.next_event("receipt", where=receipt_for(last["id"], "read", alice.handle))
    assert isinstance(event["seq"], int)
    assert event["data"]["chat_id"] == chat_id
    assert TIMESTAMP.match(event["data"]["at"]), event

    assert unread(alice, chat_id) == 0
    [_, seen_last] = bob.messages(chat_id)
    assert alice.handle in seen_last["receipts"]["read"]


def test_read_up_to_an_earlier_message_leaves_the_rest_unread(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    first = bob.send(chat_id, "one")
    bob.send(chat_id, "two")
    bob.send(chat_id, "three")
    r = alice.http.post(f"/chats/{chat_id}/read", json={"up_to": first["id"]})
    assert r.status_code == 204, r.text
    assert unread(alice, chat_id) == 2


def test_read_up_to_a_message_of_another_chat_is_refused(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    bob.send(chat_id, "unread")
    other = carol.send(carol.direct_with(alice), "elsewhere")
    r = alice.http.post(f"/chats/{chat_id}/read", json={"up_to": other["id"]})
    assert_problem(r, (404, 422))
    r = alice.http.post(f"/chats/{chat_id}/read", json={"up_to": "01HNOSUCHMESSAGE0000000000"})
    assert_problem(r, (404, 422))
    assert unread(alice, chat_id) == 1


async def test_delivered_when_receiver_acks_the_event(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    async with alice.events() as alice_ev, bob.events() as bob_ev:
        msg = bob.send(chat_id, "did you get this?")
        created = await alice_ev.next_event(
            "message.created", where=lambda e: e["data"]["id"] == msg["id"]
        )
        # no ack yet: not delivered
        await bob_ev.assert_no_event(
            "receipt", where=receipt_for(msg["id"], "delivered", alice.handle)
        )
        await alice_ev.ack(created["seq"])
        receipt = await bob_ev.next_event(
            "receipt", where=receipt_for(msg["id"], "delivered", alice.handle)
        )
    assert receipt["data"]["chat_id"] == chat_id
    assert TIMESTAMP.match(receipt["data"]["at"]), receipt
    [m] = bob.messages(chat_id)
    assert alice.handle in m["receipts"]["delivered"]


async def test_delivered_when_a_long_poll_asks_past_the_event(make_user) -> None:
    """The web app's fallback: asking for what comes after an event acknowledges it."""
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = bob.send(chat_id, "polled")
    first = alice.http.get("/events", params={"after": 0, "timeout": 0}).json()
    created = next(e for e in first["events"] if e.get("type") == "message.created")
    async with bob.events() as bob_ev:
        alice.http.get("/events", params={"after": created["seq"], "timeout": 0})
        await bob_ev.next_event("receipt", where=receipt_for(msg["id"], "delivered", alice.handle))


async def test_delivered_when_receiver_fetches_messages(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = bob.send(chat_id, "fetch me")
    async with bob.events() as bob_ev:
        alice.messages(chat_id)
        await bob_ev.next_event("receipt", where=receipt_for(msg["id"], "delivered", alice.handle))
    [m] = bob.messages(chat_id)
    assert m["receipts"]["delivered"] == [alice.handle]


async def test_group_receipts_name_each_member(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.group("Receipts", bob, carol)
    msg = alice.send(chat_id, "hello both")
    async with alice.events() as ev:
        bob.messages(chat_id)
        await ev.next_event("receipt", where=receipt_for(msg["id"], "delivered", bob.handle))
        assert alice.messages(chat_id)[0]["receipts"]["delivered"] == [bob.handle]
        r = carol.http.post(f"/chats/{chat_id}/read", json={"up_to": msg["id"]})
        assert r.status_code == 204, r.text
        await ev.next_event("receipt", where=receipt_for(msg["id"], "read", carol.handle))
    m = alice.messages(chat_id)[0]
    assert m["receipts"]["read"] == [carol.handle]
    assert bob.handle in m["receipts"]["delivered"]
