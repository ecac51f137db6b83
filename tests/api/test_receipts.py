"""Receipts: read (POST /chats/{id}/read), delivered (WebSocket ack, or fetching), a group's
receipts coalesced into one event per message, and the sender's "Message info"."""

from __future__ import annotations

import asyncio
import json

from support import cli
from support.api import TIMESTAMP, assert_problem, ok


def receipt_for(message_id: str, kind: str, handle: str | None = None):
    def match(e: dict) -> bool:
        d = e["data"]
        return (
            d["message_id"] == message_id
            and d["kind"] == kind
            and (handle is None or handle in d["handles"])
        )

    return match


def unread(user, chat_id: str) -> int:
    return {c["id"]: c for c in user.chats()}[chat_id]["unread_count"]


def created_for(message_id: str):
    return lambda e: e["data"]["id"] == message_id


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
    assert event["data"]["handles"] == [alice.handle]
    assert event["data"]["handle"] == alice.handle
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
    assert_problem(r, 422)
    r = alice.http.post(f"/chats/{chat_id}/read", json={"up_to": "01HNOSUCHMESSAGE0000000000"})
    assert_problem(r, 404)
    assert unread(alice, chat_id) == 1


async def test_delivered_when_receiver_acks_the_event(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    async with alice.events() as alice_ev, bob.events() as bob_ev:
        msg = bob.send(chat_id, "did you get this?")
        created = await alice_ev.next_event("message.created", where=created_for(msg["id"]))
        # no ack yet: not delivered
        await bob_ev.assert_no_event("receipt", where=receipt_for(msg["id"], "delivered"))
        await alice_ev.ack(created["seq"])
        receipt = await bob_ev.next_event("receipt", where=receipt_for(msg["id"], "delivered"))
    # a direct chat: one receipt event naming the one recipient, as before
    assert receipt["data"]["handles"] == [alice.handle]
    assert receipt["data"]["handle"] == alice.handle
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


async def test_a_groups_acks_reach_the_sender_as_one_event(make_user) -> None:
    """Every member acks a group message within the batch window: the sender gets one
    delivered event naming them all, not one per member."""
    alice = make_user()
    members = [make_user() for _ in range(4)]
    chat_id = alice.group("Coalesced", *members)
    handles = sorted(m.handle for m in members)
    streams = [m.events() for m in members]
    async with alice.events() as alice_ev:
        for stream in streams:
            await stream.open()
        try:
            msg = alice.send(chat_id, "everyone acks this")
            created = await asyncio.gather(
                *(s.next_event("message.created", where=created_for(msg["id"])) for s in streams)
            )
            for stream, event in zip(streams, created, strict=True):
                await stream.ack(event["seq"])
            receipt = await alice_ev.next_event(
                "receipt", where=receipt_for(msg["id"], "delivered")
            )
            assert receipt["data"]["handles"] == handles
            assert receipt["data"]["handle"] == handles[0]
            assert receipt["data"]["chat_id"] == chat_id

            # A later event to alice: every receipt logged before it has arrived by then.
            r = members[0].http.post(f"/chats/{chat_id}/read", json={"up_to": msg["id"]})
            assert r.status_code == 204, r.text
            await alice_ev.next_event("receipt", where=receipt_for(msg["id"], "read"))
            assert alice_ev.pending("receipt") == []
        finally:
            for stream in streams:
                await stream.close()
    assert alice.messages(chat_id)[0]["receipts"]["delivered"] == handles


async def test_a_direct_ack_is_not_held_by_a_groups_batch_window(make_user, make_server) -> None:
    """A group member's ack waits for the window; meanwhile another user's ack of a direct
    message is written at once."""
    server = make_server(limits__receipt_batch_ms=1000)
    alice, bob, carol, dan = (make_user(server=server) for _ in range(4))
    group_id = alice.group("Window", bob)
    direct_id = dan.direct_with(carol)
    async with (
        alice.events() as alice_ev,
        bob.events() as bob_ev,
        carol.events() as carol_ev,
        dan.events() as dan_ev,
    ):
        in_group = alice.send(group_id, "to the group")
        in_direct = dan.send(direct_id, "to carol")
        group_created = await bob_ev.next_event(
            "message.created", where=created_for(in_group["id"])
        )
        direct_created = await carol_ev.next_event(
            "message.created", where=created_for(in_direct["id"])
        )
        await bob_ev.ack(group_created["seq"])
        await carol_ev.ack(direct_created["seq"])
        await dan_ev.next_event("receipt", where=receipt_for(in_direct["id"], "delivered"))
        assert alice_ev.pending("receipt") == [], "the group's window closed before a direct ack"
        group_receipt = await alice_ev.next_event(
            "receipt", where=receipt_for(in_group["id"], "delivered")
        )
    assert group_receipt["data"]["handles"] == [bob.handle]


async def test_read_receipts_of_several_messages_are_one_event_each(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.group("Reads", bob)
    sent = [alice.send(chat_id, f"m{i}")["id"] for i in range(3)]
    async with alice.events() as ev:
        ok(bob.http.post(f"/chats/{chat_id}/read", json={"up_to": sent[-1]}), 204)
        for message_id in sent:
            event = await ev.next_event("receipt", where=receipt_for(message_id, "read"))
            assert event["data"]["handles"] == [bob.handle]
        later = bob.send(chat_id, "a later event to alice")
        await ev.next_event("message.created", where=created_for(later["id"]))
        assert ev.pending("receipt") == []


# --- GET /messages/{id}/receipts: the sender's "Message info" ------------------------------


def test_message_info_lists_each_member_with_times(make_user) -> None:
    alice = make_user(display_name="Alice")
    bob, carol, dan = (make_user(display_name=name) for name in ("Bob", "Carol", "Dan"))
    chat_id = alice.group("Info", bob, carol, dan)
    msg = alice.send(chat_id, "who has seen this?")
    bob.messages(chat_id)  # delivered
    ok(carol.http.post(f"/chats/{chat_id}/read", json={"up_to": msg["id"]}), 204)  # read
    # erin joins afterwards: the message was never sent to her
    erin = make_user()
    ok(alice.http.post(f"/chats/{chat_id}/members", json={"handle": erin.handle}))

    info = ok(alice.http.get(f"/messages/{msg['id']}/receipts"))
    rows = info["receipts"]
    assert [r["handle"] for r in rows] == sorted([bob.handle, carol.handle, dan.handle])
    by = {r["handle"]: r for r in rows}
    assert set(by[bob.handle]) == {"handle", "display_name", "delivered_at", "read_at", "played_at"}
    assert by[bob.handle]["display_name"] == "Bob"
    assert TIMESTAMP.match(by[bob.handle]["delivered_at"])
    assert by[bob.handle]["read_at"] is None
    assert TIMESTAMP.match(by[carol.handle]["delivered_at"])
    assert TIMESTAMP.match(by[carol.handle]["read_at"])
    assert by[carol.handle]["played_at"] is None
    assert by[dan.handle] == {
        "handle": dan.handle,
        "display_name": "Dan",
        "delivered_at": None,
        "read_at": None,
        "played_at": None,
    }


def test_message_info_keeps_a_member_who_left_after_it(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.group("Leaving", bob, carol)
    msg = alice.send(chat_id, "before you go")
    bob.messages(chat_id)
    r = bob.http.delete(f"/chats/{chat_id}/members/{bob.handle}")
    assert r.status_code == 204, r.text
    rows = ok(alice.http.get(f"/messages/{msg['id']}/receipts"))["receipts"]
    assert {r["handle"] for r in rows} == {bob.handle, carol.handle}
    assert TIMESTAMP.match({r["handle"]: r for r in rows}[bob.handle]["delivered_at"])


def test_message_info_of_direct_and_self_chats(make_user) -> None:
    alice, bob = make_user(), make_user()
    direct = alice.send(alice.direct_with(bob), "just us")
    [row] = ok(alice.http.get(f"/messages/{direct['id']}/receipts"))["receipts"]
    assert row["handle"] == bob.handle and row["delivered_at"] is None
    note = alice.send(alice.self_chat()["id"], "a note")
    assert ok(alice.http.get(f"/messages/{note['id']}/receipts")) == {"receipts": []}


def test_only_the_sender_sees_message_info(make_user) -> None:
    alice, bob, outsider = make_user(), make_user(), make_user()
    chat_id = alice.group("Private info", bob)
    msg = alice.send(chat_id, "mine")
    # bob sees the message but not who else got it: 403
    assert_problem(bob.http.get(f"/messages/{msg['id']}/receipts"), 403)
    # someone who cannot see the message learns nothing, not even that it exists
    assert_problem(outsider.http.get(f"/messages/{msg['id']}/receipts"), 404)
    assert_problem(alice.http.get("/messages/01HNOSUCHMESSAGE0000000000/receipts"), 404)
    # nor does a member who joined after it
    late = make_user()
    ok(alice.http.post(f"/chats/{chat_id}/members", json={"handle": late.handle}))
    assert_problem(late.http.get(f"/messages/{msg['id']}/receipts"), 404)
    with alice.server.client() as anon:
        assert_problem(anon.get(f"/messages/{msg['id']}/receipts"), 401)


def test_cli_info_shows_the_message_info(make_user, tmp_path) -> None:
    alice, bob, carol = make_user(), make_user(display_name="Bob B"), make_user()
    chat_id = alice.group("CLI info", bob, carol)
    msg = alice.send(chat_id, "seen?")
    ok(bob.http.post(f"/chats/{chat_id}/read", json={"up_to": msg["id"]}), 204)

    config = cli.login(alice.server, alice, tmp_path / "alice")
    table = cli.ok(cli.voxbox(config, "info", msg["id"]))
    assert "Read by 1 of 2, delivered to 1 of 2." in table
    [bob_row] = [line for line in table.splitlines() if bob.handle in line]
    assert "Bob B" in bob_row and bob_row.split()[-1] == "-"  # read, not played
    [carol_row] = [line for line in table.splitlines() if carol.handle in line]
    assert carol_row.split()[-3:] == ["-", "-", "-"]
    as_json = json.loads(cli.ok(cli.voxbox(config, "info", msg["id"], "--json")))
    assert as_json == ok(alice.http.get(f"/messages/{msg['id']}/receipts"))

    # not the sender: the server's refusal, exit code 1
    bob_config = cli.login(bob.server, bob, tmp_path / "bob")
    refused = cli.voxbox(bob_config, "info", msg["id"])
    assert refused.returncode == 1
    assert "Forbidden" in refused.stderr
