"""Chats: the self chat, direct and group chats, members (add, remove, leave), who sees what,
and the chat list (newest activity first, unread counts, last message)."""

from __future__ import annotations

from support.api import TIMESTAMP, assert_problem, client_id, ok, unique_handle
from support.audio import chunks, webm_recording
from support.tus import head, patch, record

CHAT_FIELDS = {"id", "kind", "title", "members", "last_message", "unread_count", "updated_at"}


def assert_chat(chat: dict) -> None:
    missing = CHAT_FIELDS - chat.keys()
    assert not missing, f"chat without {missing}: {chat}"
    assert isinstance(chat["id"], str)
    assert TIMESTAMP.match(chat["updated_at"]), chat["updated_at"]
    for m in chat["members"]:
        assert {"handle", "display_name", "role"} <= m.keys(), m


def roles(chat: dict) -> dict[str, str]:
    return {m["handle"]: m["role"] for m in chat["members"]}


def test_self_chat_exists_from_registration(make_user) -> None:
    user = make_user()
    chats = user.chats()
    assert len(chats) == 1, chats
    chat = chats[0]
    assert_chat(chat)
    assert chat["kind"] == "self"
    assert chat["title"] == "Message yourself"
    assert [m["handle"] for m in chat["members"]] == [user.handle]
    assert chat["unread_count"] == 0
    assert chat["last_message"] is None

    msg = user.send(chat["id"], "note to self")
    assert user.messages(chat["id"])[-1]["id"] == msg["id"]


def test_direct_chat_created_once_from_either_side(make_user) -> None:
    alice, bob = make_user(), make_user()
    r = alice.http.post("/chats", json={"kind": "direct", "handle": bob.handle})
    created = ok(r, 201)
    assert_chat(created)
    assert created["kind"] == "direct"
    assert {m["handle"] for m in created["members"]} == {alice.handle, bob.handle}

    again = ok(alice.http.post("/chats", json={"kind": "direct", "handle": bob.handle}), 200)
    assert again["id"] == created["id"]
    # handles are case-insensitive
    again = ok(alice.http.post("/chats", json={"kind": "direct", "handle": bob.handle.upper()}))
    assert again["id"] == created["id"]
    other_side = ok(bob.http.post("/chats", json={"kind": "direct", "handle": alice.handle}), 200)
    assert other_side["id"] == created["id"]

    assert created["id"] in {c["id"] for c in bob.chats()}
    assert ok(bob.http.get(f"/chats/{created['id']}"))["id"] == created["id"]


def test_direct_chat_with_unknown_handle_is_404(make_user) -> None:
    alice = make_user()
    r = alice.http.post("/chats", json={"kind": "direct", "handle": unique_handle("ghost")})
    assert_problem(r, 404, "not_found")
    assert len(alice.chats()) == 1  # only the self chat


def test_group_creator_is_admin(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    r = alice.http.post(
        "/chats", json={"kind": "group", "title": "Band", "handles": [bob.handle, carol.handle]}
    )
    chat = ok(r, 201)
    assert_chat(chat)
    assert chat["kind"] == "group"
    assert chat["title"] == "Band"
    assert roles(chat) == {alice.handle: "admin", bob.handle: "member", carol.handle: "member"}
    for u in (bob, carol):
        assert chat["id"] in {c["id"] for c in u.chats()}


def test_group_with_unknown_member_creates_nothing(make_user) -> None:
    alice, bob = make_user(), make_user()
    r = alice.http.post(
        "/chats",
        json={"kind": "group", "title": "x", "handles": [bob.handle, unique_handle("ghost")]},
    )
    assert_problem(r, 422, "invalid")
    assert len(alice.chats()) == 1
    assert len(bob.chats()) == 1


def test_only_group_admin_adds_and_removes(make_user) -> None:
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    chat_id = alice.group("Team", bob)

    # a plain member may not add or remove others: they see the chat, so it is 403
    assert_problem(
        bob.http.post(f"/chats/{chat_id}/members", json={"handle": carol.handle}), 403, "forbidden"
    )
    assert_problem(bob.http.delete(f"/chats/{chat_id}/members/{alice.handle}"), 403, "forbidden")
    assert carol.handle not in roles(alice.chat(chat_id))

    # the admin adds
    chat = ok(alice.http.post(f"/chats/{chat_id}/members", json={"handle": carol.handle}))
    assert_chat(chat)
    assert roles(chat)[carol.handle] == "member"
    assert chat_id in {c["id"] for c in carol.chats()}
    carol.send(chat_id, "hi, I'm in")

    # ... and removes
    r = alice.http.delete(f"/chats/{chat_id}/members/{carol.handle}")
    assert r.status_code == 204, r.text
    assert carol.handle not in roles(alice.chat(chat_id))
    r = carol.http.post(
        f"/chats/{chat_id}/messages", json={"client_id": client_id(), "kind": "text", "text": "?"}
    )
    assert_problem(r, 403, "forbidden")

    # a non-member may not add themselves, and gets 404 as the chat is not theirs to see
    r = dave.http.post(f"/chats/{chat_id}/members", json={"handle": dave.handle})
    assert_problem(r, 404, "not_found")


def test_member_leaves_and_keeps_history_up_to_leaving(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.group("Trip", bob, carol)
    before = alice.send(chat_id, "before carol leaves")
    carol_reply = carol.send(chat_id, "bye all")

    r = carol.http.delete(f"/chats/{chat_id}/members/{carol.handle}")
    assert r.status_code == 204, r.text

    after = alice.send(chat_id, "after carol left")
    bob.send(chat_id, "yes, after")

    seen = [m["id"] for m in carol.messages(chat_id)]
    assert before["id"] in seen and carol_reply["id"] in seen
    assert after["id"] not in seen
    assert len(seen) == 2, seen

    r = carol.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "text", "text": "can I still post?"},
    )
    assert_problem(r, 403, "forbidden")
    assert carol.handle not in roles(alice.chat(chat_id))
    assert len(alice.messages(chat_id)) == 4


def test_non_member_sees_nothing(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    msg = alice.send(chat_id, "private")
    group_id = alice.group("Secret", bob)

    for cid in (chat_id, group_id, alice.self_chat()["id"]):
        assert_problem(eve.http.get(f"/chats/{cid}"), 404, "not_found")
        assert_problem(eve.http.get(f"/chats/{cid}/messages"), 404, "not_found")
        r = eve.http.post(
            f"/chats/{cid}/messages", json={"client_id": client_id(), "kind": "text", "text": "x"}
        )
        assert_problem(r, 404, "not_found")
        r = eve.http.post(f"/chats/{cid}/members", json={"handle": eve.handle})
        assert_problem(r, 404, "not_found")
        r = eve.http.delete(f"/chats/{cid}/members/{alice.handle}")
        assert_problem(r, 404, "not_found")
        assert_problem(eve.http.post(f"/chats/{cid}/read", json={"up_to": msg["id"]}), 404)

    assert {c["id"] for c in eve.chats()} == {eve.self_chat()["id"]}
    assert len(alice.messages(chat_id)) == 1  # nothing was posted by eve


def test_chat_list_newest_activity_first_with_unread_and_last_message(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    with_bob = alice.direct_with(bob)
    with_carol = alice.direct_with(carol)

    bob.send(with_bob, "one")
    bob.send(with_bob, "two")
    last_from_bob = bob.send(with_bob, "three")
    from_carol = carol.send(with_carol, "hey")

    chats = alice.chats()
    for c in chats:
        assert_chat(c)
    ids = [c["id"] for c in chats]
    assert ids.index(with_carol) < ids.index(with_bob)
    stamps = [c["updated_at"] for c in chats]
    assert stamps == sorted(stamps, reverse=True), stamps

    by_id = {c["id"]: c for c in chats}
    assert by_id[with_bob]["unread_count"] == 3
    assert by_id[with_carol]["unread_count"] == 1
    assert by_id[with_bob]["last_message"]["id"] == last_from_bob["id"]
    assert by_id[with_bob]["last_message"]["text"] == "three"
    assert by_id[with_carol]["last_message"]["id"] == from_carol["id"]

    # the sender has nothing unread in the chat they wrote to
    bob_view = {c["id"]: c for c in bob.chats()}[with_bob]
    assert bob_view["unread_count"] == 0

    # new activity moves a chat back to the top
    alice.send(with_bob, "back to you")
    ids = [c["id"] for c in alice.chats()]
    assert ids[0] == with_bob, ids
    assert alice.chat(with_bob)["last_message"]["text"] == "back to you"


def test_unknown_chat_is_404(make_user) -> None:
    user = make_user()
    assert_problem(user.http.get("/chats/01HZZZZZZZZZZZZZZZZZZZZZZZ"), 404, "not_found")
    assert_problem(user.http.get("/chats/does-not-exist/messages"), 404, "not_found")


def test_a_former_member_sees_the_chat_as_it_was_and_cannot_keep_recording_into_it(
    make_user,
) -> None:
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    chat = ok(
        alice.http.post(
            "/chats", json={"kind": "group", "title": "Trip", "handles": [bob.handle, carol.handle]}
        ),
        201,
    )
    alice.send(chat["id"], "before bob left")
    recording = record(
        bob.http,
        chunks(webm_recording(2), 2)[:1],
        chat_id=chat["id"],
        kind="voice",
        content_type="audio/webm;codecs=opus",
    )
    r = alice.http.delete(f"/chats/{chat['id']}/members/{bob.handle}")
    assert r.status_code == 204, r.text
    as_left = ok(bob.http.get(f"/chats/{chat['id']}"))
    ok(alice.http.post(f"/chats/{chat['id']}/members", json={"handle": dave.handle}))
    alice.send(chat["id"], "after bob left")

    seen = ok(bob.http.get(f"/chats/{chat['id']}"))
    assert sorted(m["handle"] for m in seen["members"]) == sorted([alice.handle, carol.handle])
    assert seen["updated_at"] == as_left["updated_at"]  # later activity is not his to see
    assert seen["last_message"]["text"] == "before bob left"
    now = ok(alice.http.get(f"/chats/{chat['id']}"))
    assert dave.handle in [m["handle"] for m in now["members"]]

    offset = int(head(bob.http, recording).headers["Upload-Offset"])
    refused = patch(bob.http, recording, offset, b"more of the recording")
    assert_problem(refused, 403, "forbidden")
