"""Text messages: the message object, idempotent client_id (also concurrent), reply_to,
pagination, delete for me / for everyone, forward, star."""

from __future__ import annotations

import asyncio

from support.api import TIMESTAMP, assert_problem, client_id, ok

MESSAGE_FIELDS = {
    "id", "chat_id", "client_id", "sender", "kind", "text", "media", "reply_to",
    "forwarded", "view_once", "deleted", "created_at", "receipts",
}  # fmt: skip


def assert_message(m: dict) -> None:
    missing = MESSAGE_FIELDS - m.keys()
    assert not missing, f"message without {missing}: {m}"
    assert isinstance(m["id"], str) and m["id"]
    assert TIMESTAMP.match(m["created_at"]), m["created_at"]
    assert set(m["receipts"]) >= {"delivered", "read", "played"}, m["receipts"]


def post(user, chat_id: str, **body) -> object:
    body.setdefault("kind", "text")
    body.setdefault("client_id", client_id())
    return user.http.post(f"/chats/{chat_id}/messages", json=body)


def test_post_text_message(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    cid = client_id()
    msg = ok(post(alice, chat_id, client_id=cid, text="Hello, Bob 👋"), 201)
    assert_message(msg)
    assert msg["chat_id"] == chat_id
    assert msg["client_id"] == cid
    assert msg["sender"] == alice.handle
    assert msg["kind"] == "text"
    assert msg["text"] == "Hello, Bob 👋"
    assert msg["media"] is None
    assert msg["reply_to"] is None
    assert msg["forwarded"] is False
    assert msg["view_once"] is False
    assert msg["deleted"] is False
    assert msg["receipts"] == {"delivered": [], "read": [], "played": []}

    fetched = bob.messages(chat_id)
    assert [m["id"] for m in fetched] == [msg["id"]]
    assert_message(fetched[0])
    assert fetched[0]["text"] == "Hello, Bob 👋"


def test_same_client_id_twice_is_one_message(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    cid = client_id()
    first = ok(post(alice, chat_id, client_id=cid, text="once"), 201)
    again = ok(post(alice, chat_id, client_id=cid, text="once"), 200)
    assert again == first or again["id"] == first["id"]
    # a retry with a different body still answers with the first message
    changed = ok(post(alice, chat_id, client_id=cid, text="twice?"), 200)
    assert changed["id"] == first["id"]
    assert changed["text"] == "once"
    assert [m["id"] for m in bob.messages(chat_id)] == [first["id"]]


def test_client_id_is_per_sender(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    cid = client_id()
    a = ok(post(alice, chat_id, client_id=cid, text="from alice"), 201)
    b = ok(post(bob, chat_id, client_id=cid, text="from bob"), 201)
    assert a["id"] != b["id"]
    assert len(alice.messages(chat_id)) == 2


async def test_same_client_id_concurrently_is_one_message(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    cid = client_id()
    body = {"client_id": cid, "kind": "text", "text": "racing"}
    async with alice.async_http() as c:
        responses = await asyncio.gather(
            *(c.post(f"/chats/{chat_id}/messages", json=body) for _ in range(10))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [(r.status_code, r.text) for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1, ids
    assert [m["id"] for m in bob.messages(chat_id)] == list(ids)


def test_reply_to_a_message_of_the_same_chat(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    other_chat = alice.direct_with(carol)
    original = alice.send(chat_id, "question?")
    elsewhere = alice.send(other_chat, "elsewhere")

    reply = ok(post(bob, chat_id, text="answer", reply_to=original["id"]), 201)
    assert reply["reply_to"] == original["id"]
    assert bob.messages(chat_id)[-1]["reply_to"] == original["id"]

    # a message of another chat, or no message at all: refused, nothing written
    assert_problem(post(alice, chat_id, text="x", reply_to=elsewhere["id"]), 422, "invalid")
    assert_problem(
        post(alice, chat_id, text="x", reply_to="01HNOSUCHMESSAGE0000000000"), 422, "invalid"
    )
    # bob may not even learn that carol's chat's message exists
    assert_problem(post(bob, chat_id, text="x", reply_to=elsewhere["id"]), 422, "invalid")
    assert len(alice.messages(chat_id)) == 2


def test_pagination_before_after_limit(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    sent = [alice.send(chat_id, f"m{i}")["id"] for i in range(7)]

    def page(**params) -> tuple[list[str], bool]:
        body = ok(bob.http.get(f"/chats/{chat_id}/messages", params=params))
        return [m["id"] for m in body["messages"]], body["has_more"]

    assert page() == (sent, False)  # default limit 50, oldest first
    newest, more = page(limit=3)
    assert (newest, more) == (sent[4:], True)
    assert page(limit=3, before=newest[0]) == (sent[1:4], True)
    assert page(limit=3, before=sent[1]) == (sent[:1], False)
    assert page(limit=3, after=sent[1]) == (sent[2:5], True)
    assert page(limit=3, after=sent[4]) == (sent[5:], False)
    assert page(limit=200) == (sent, False)

    assert_problem(bob.http.get(f"/chats/{chat_id}/messages", params={"limit": 201}), 422)
    assert_problem(bob.http.get(f"/chats/{chat_id}/messages", params={"limit": 0}), 422)
    assert_problem(bob.http.get(f"/chats/{chat_id}/messages", params={"limit": "lots"}), 422)


def test_delete_for_me_hides_only_for_me(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    keep = bob.send(chat_id, "keep")
    gone = bob.send(chat_id, "hide this")

    r = alice.http.delete(f"/messages/{gone['id']}", params={"scope": "me"})
    assert r.status_code == 204, r.text
    assert [m["id"] for m in alice.messages(chat_id)] == [keep["id"]]
    theirs = bob.messages(chat_id)
    assert [m["id"] for m in theirs] == [keep["id"], gone["id"]]
    assert theirs[1]["deleted"] is False and theirs[1]["text"] == "hide this"


async def test_delete_for_everyone_sender_only(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = alice.send(chat_id, "oops")

    assert_problem(bob.http.delete(f"/messages/{msg['id']}", params={"scope": "everyone"}), 403)
    assert_problem(eve.http.delete(f"/messages/{msg['id']}", params={"scope": "everyone"}), 404)
    assert bob.messages(chat_id)[0]["text"] == "oops"

    async with bob.events() as ev:
        r = alice.http.delete(f"/messages/{msg['id']}", params={"scope": "everyone"})
        assert r.status_code == 204, r.text
        updated = await ev.next_event(
            "message.updated", where=lambda e: e["data"]["id"] == msg["id"]
        )
    assert isinstance(updated["seq"], int)
    assert updated["data"]["deleted"] is True
    assert updated["data"]["text"] is None

    for user in (alice, bob):
        [m] = user.messages(chat_id)
        assert m["id"] == msg["id"]
        assert m["deleted"] is True
        assert m["text"] is None


def test_delete_needs_a_valid_scope_and_a_visible_message(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = alice.send(chat_id, "x")
    assert_problem(alice.http.delete(f"/messages/{msg['id']}", params={"scope": "all"}), 422)
    assert_problem(eve.http.delete(f"/messages/{msg['id']}", params={"scope": "me"}), 404)
    assert_problem(alice.http.delete("/messages/01HNOSUCHMESSAGE0000000000?scope=me"), 404)
    assert alice.messages(chat_id)[0]["deleted"] is False


def test_forward_to_chats(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    source = bob.direct_with(alice)
    msg = bob.send(source, "pass it on")
    to_carol = alice.direct_with(carol)
    to_self = alice.self_chat()["id"]

    r = alice.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": [to_carol, to_self]})
    body = ok(r, 201)
    assert len(body["messages"]) == 2
    assert {m["chat_id"] for m in body["messages"]} == {to_carol, to_self}
    for m in body["messages"]:
        assert_message(m)
        assert m["forwarded"] is True
        assert m["sender"] == alice.handle
        assert m["text"] == "pass it on"
        assert m["id"] != msg["id"]
    [at_carol] = carol.messages(to_carol)
    assert at_carol["forwarded"] is True and at_carol["text"] == "pass it on"
    assert bob.messages(source)[0]["forwarded"] is False


def test_forward_limits_and_visibility(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    source = alice.direct_with(bob)
    msg = alice.send(source, "forward me")
    groups = [alice.group(f"g{i}", bob) for i in range(6)]

    assert_problem(
        alice.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": groups}), 422
    )
    r = alice.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": groups[:5]})
    assert len(ok(r, 201)["messages"]) == 5

    # one chat alice is not in: 404, and nothing lands in the chat she is in either
    eves_chat = eve.self_chat()["id"]
    r = alice.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": [groups[5], eves_chat]})
    assert_problem(r, 404, "not_found")
    assert alice.messages(groups[5]) == []
    assert eve.messages(eves_chat) == []

    # a message eve cannot see cannot be forwarded by her
    r = eve.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": [eves_chat]})
    assert_problem(r, 404, "not_found")
    assert_problem(alice.http.post(f"/messages/{msg['id']}/forward", json={"chat_ids": []}), 422)


def test_star_unstar_and_starred_list(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    one = bob.send(chat_id, "star me")
    two = bob.send(chat_id, "me too")

    for m in (one, two):
        r = alice.http.put(f"/messages/{m['id']}/star")
        assert r.status_code == 204, r.text
    assert alice.http.put(f"/messages/{one['id']}/star").status_code == 204  # idempotent

    starred = ok(alice.http.get("/starred"))["messages"]
    assert sorted(m["id"] for m in starred) == sorted([one["id"], two["id"]])
    for m in starred:
        assert_message(m)
    assert ok(bob.http.get("/starred"))["messages"] == []

    r = alice.http.delete(f"/messages/{one['id']}/star")
    assert r.status_code == 204, r.text
    assert [m["id"] for m in ok(alice.http.get("/starred"))["messages"]] == [two["id"]]

    assert_problem(eve.http.put(f"/messages/{one['id']}/star"), 404, "not_found")
    assert ok(eve.http.get("/starred"))["messages"] == []
