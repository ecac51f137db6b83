"""Scale-out: two `voxbox serve` processes share one PostgreSQL database and Redis; events
published by one reach WebSockets held on the other."""

from __future__ import annotations

import pytest

from support.api import User, login_on, make_user_on

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def on(server, user: User) -> User:
    """The same user, talking to another server process."""
    return User(
        server=server,
        id=user.id,
        handle=user.handle,
        password=user.password,
        token=user.token,
        display_name=user.display_name,
        http=server.client(user.token),
    )


async def test_websocket_on_a_receives_what_is_posted_through_b(make_server) -> None:
    a = make_server()
    b = make_server(share_store_with=a)
    alice = make_user_on(a)
    bob_on_b = make_user_on(b)  # registered through B, visible through A
    bob_on_a = on(a, bob_on_b)
    alice_on_b = login_on(b, alice.handle, alice.password)

    chat_id = alice.direct_with(bob_on_a)
    assert ok_ids(bob_on_b.chats()) >= {chat_id}

    async with alice.events() as alice_ws_a, bob_on_b.events() as bob_ws_b:
        # B -> WebSocket on A
        msg = bob_on_b.send(chat_id, "through B")
        event = await alice_ws_a.next_event(
            "message.created", where=lambda e: e["data"]["id"] == msg["id"]
        )
        assert event["data"]["text"] == "through B"

        # A -> WebSocket on B
        reply = alice.send(chat_id, "through A")
        await bob_ws_b.next_event("message.created", where=lambda e: e["data"]["id"] == reply["id"])

        # receipts and presence cross processes too
        await alice_ws_a.ack(event["seq"])
        await bob_ws_b.next_event(
            "receipt",
            where=lambda e: (
                e["data"]["message_id"] == msg["id"] and e["data"]["kind"] == "delivered"
            ),
        )
        await bob_ws_b.presence(chat_id, "typing")
        presence = await alice_ws_a.next_event("presence")
        assert presence["data"] == {
            "chat_id": chat_id,
            "handle": bob_on_b.handle,
            "state": "typing",
        }

    # one log: a resume on either process sees the same events
    async with alice.events(after=0) as on_a:
        pass
    async with alice_on_b.events(after=0) as on_b:
        pass
    assert on_a.replayed == on_b.replayed
    for u in (alice, bob_on_a, bob_on_b, alice_on_b):
        u.http.close()


def ok_ids(chats: list[dict]) -> set[str]:
    return {c["id"] for c in chats}


def test_a_logout_on_one_worker_ends_the_login_on_every_worker_at_once(make_server) -> None:
    """Each worker caches the logins it has seen; a logout reaches every worker's cache."""
    a = make_server()
    b = make_server(share_store_with=a)
    alice = make_user_on(a)
    alice_on_b = on(b, alice)
    phone = login_on(a, alice.handle, alice.password)
    phone_on_b = on(b, phone)
    for who in (alice_on_b, phone_on_b):  # both logins now cached on B
        assert who.http.get("/me").status_code == 200

    assert alice.http.post("/auth/logout").status_code == 204  # through A
    assert alice_on_b.http.get("/me").status_code == 401
    assert phone_on_b.http.get("/me").status_code == 200  # the other login goes on

    assert phone.http.post("/auth/logout", params={"all": "true"}).status_code == 204
    assert phone_on_b.http.get("/me").status_code == 401
