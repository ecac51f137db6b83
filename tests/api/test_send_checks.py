"""Check, then do: a send that cannot be posted changes nothing, and a received view-once voice
message never becomes a normal copy."""

from __future__ import annotations

from support.api import assert_problem, client_id, ok
from support.audio import chunks, webm_recording
from support.tus import head, record


def recording(user, chat_id: str) -> str:
    return record(
        user.http,
        chunks(webm_recording(1), 2),
        chat_id=chat_id,
        kind="voice",
        content_type="audio/webm;codecs=opus",
    )


def test_a_bad_reply_to_refuses_the_voice_send_and_keeps_the_draft(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    elsewhere = alice.send(alice.self_chat()["id"], "in another chat")
    draft = recording(alice, chat_id)
    before = head(alice.http, draft)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": draft}

    refused = alice.http.post(
        f"/chats/{chat_id}/messages", json={**body, "reply_to": elsewhere["id"]}
    )

    assert_problem(refused, 422, "invalid")
    after = head(alice.http, draft)  # the draft is as it was: same bytes, still a draft
    assert after.status_code == 200
    assert after.headers["Upload-Offset"] == before.headers["Upload-Offset"]
    drafts = ok(alice.http.get("/uploads"))
    assert draft in [d["id"] for d in drafts["uploads"]]
    sent = ok(alice.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    assert sent["media"]["duration_ms"] > 900
    assert [m["id"] for m in bob.messages(chat_id)] == [sent["id"]]


def test_a_received_view_once_voice_message_cannot_be_posted_again(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    draft = recording(alice, chat_id)
    once = ok(
        alice.http.post(
            f"/chats/{chat_id}/messages",
            json={"client_id": client_id(), "kind": "voice", "upload_id": draft, "view_once": True},
        ),
        201,
    )
    media_id = once["media"]["id"]
    with_carol = bob.direct_with(carol)

    def repost(user, chat: str):
        return user.http.post(
            f"/chats/{chat}/messages",
            json={"client_id": client_id(), "kind": "voice", "media_id": media_id},
        )

    assert_problem(repost(bob, with_carol), 422, "invalid")  # before playing it
    ok(bob.http.post(f"/messages/{once['id']}/played"), 204)
    assert_problem(repost(bob, with_carol), 404, "not_found")  # after: he cannot even see it
    assert carol.messages(with_carol) == []
    # The sender still owns her recording and may post it again.
    assert ok(repost(alice, chat_id), 201)["media"]["id"] == media_id
