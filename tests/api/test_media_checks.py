"""What the bytes tell is checked before posting; media that fails after posting is withdrawn.

- A file whose headers credibly claim more than the duration limit is a 413 up front: nothing
  is made, and a draft stays as it was.
- A header claiming more than the file holds is not trusted: the file is measured by decoding.
- A file that fails in the background takes its messages back (``message.updated`` with
  ``withdrawn.reason``), for recipients and sender alike.
"""

from __future__ import annotations

import struct

import pytest

from support.api import assert_problem, client_id, ok
from support.audio import encode, wav_bytes
from support.tus import TUS, upload


def lying_wav(seconds_held: float, seconds_claimed: float) -> bytes:
    """A 16 kHz mono WAV holding ``seconds_held`` whose data chunk claims ``seconds_claimed``."""
    data = wav_bytes(seconds_held)
    at = data.index(b"data") + 4
    return data[:at] + struct.pack("<I", int(seconds_claimed * 16_000) * 2) + data[at + 4 :]


def content_blobs(server) -> list[str]:
    """Content-addressed blobs on disk (upload parts excluded); [] with S3 storage."""
    if server.settings.get("VOXBOX_STORAGE_URL"):
        return []
    root = server.data_dir / "blobs"
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "uploads"
    )


@pytest.mark.parametrize("via", ["message", "finish"])
def test_a_voice_file_whose_header_says_too_long_is_413_and_the_draft_stays(
    make_server, make_user, via
) -> None:
    # Past inline_max_seconds: without the check it would be posted and fail in the background.
    server = make_server(limits__voice_max_seconds=3, limits__inline_max_seconds=1)
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    data = encode(5, "ipod", "aac")  # an iPhone voice memo: M4A, its duration in the header
    uid = upload(alice.http, data, pieces=2, filename="memo.m4a", kind="voice", chat_id=chat_id)
    if via == "message":
        r = alice.http.post(
            f"/chats/{chat_id}/messages",
            json={"client_id": client_id(), "kind": "voice", "upload_id": uid},
        )
    else:
        r = alice.http.post(f"/uploads/{uid}/finish", json={"kind": "voice"})
    problem = assert_problem(r, 413, "payload_too_large")
    assert problem["reason"] == "too_long"
    assert problem["limit_ms"] == 3_000
    assert abs(problem["duration_ms"] - 5_000) < 100
    assert "0:05" in problem["detail"] and "0:03" in problem["detail"]

    assert alice.messages(chat_id) == [] and bob.messages(chat_id) == []
    assert content_blobs(server) == []
    # The draft is as it was: listed, complete, its bytes intact, and it can be discarded.
    (draft,) = ok(alice.http.get("/uploads", params={"state": "open"}))["uploads"]
    assert (draft["id"], draft["offset"], draft["length"]) == (uid, len(data), len(data))
    assert alice.http.get(f"/uploads/{uid}/content").content == data
    assert alice.http.delete(f"/uploads/{uid}", headers=TUS).status_code == 204
    assert ok(alice.http.get("/uploads", params={"state": "open"}))["uploads"] == []


def test_a_header_claiming_more_than_the_file_holds_is_measured(make_server, make_user) -> None:
    """A WAV that says 6 hours and holds 2 s: not refused, not sent to the background path."""
    server = make_server(limits__voice_max_seconds=3, limits__inline_max_seconds=1)
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    uid = upload(alice.http, lying_wav(2, 6 * 3600), filename="note.wav", kind="voice")
    message = ok(
        alice.http.post(
            f"/chats/{chat_id}/messages",
            json={"client_id": client_id(), "kind": "voice", "upload_id": uid},
        ),
        201,
    )
    media = message["media"]
    assert media["state"] == "ready"  # processed inline, in the request
    assert abs(media["duration_ms"] - 2_000) <= 30
    played = bob.http.get(f"/media/{media['id']}/content", params={"format": "ogg"})
    assert played.status_code == 200


async def test_media_failing_in_the_background_is_withdrawn(make_server, make_user) -> None:
    # An MP3's duration is an estimate: 2.5 s against a 2 s limit is not refused up front
    # (estimates get slack), goes to the background path, and decoding finds it too long.
    server = make_server(limits__audio_max_seconds=2, limits__inline_max_seconds=1)
    alice, bob, cid = (make_user(server=server) for _ in range(3))
    chat_id = alice.group("band", bob, cid)
    async with alice.events() as alice_ev, bob.events() as bob_ev:
        uid = upload(alice.http, encode(2.5, "mp3", "libmp3lame"), filename="take.mp3")
        posted = ok(
            alice.http.post(
                f"/chats/{chat_id}/messages",
                json={"client_id": client_id(), "kind": "audio", "upload_id": uid},
            ),
            201,
        )
        assert posted["media"]["state"] == "processing"
        gone = await bob_ev.next_event(
            "message.updated", where=lambda f: f["data"]["id"] == posted["id"], timeout=60
        )
        told = await alice_ev.next_event(
            "message.updated", where=lambda f: f["data"]["id"] == posted["id"], timeout=10
        )
    for frame in (gone, told):
        view = frame["data"]
        assert view["deleted"] is True and view["media"] is None
        assert "longer than the limit" in view["withdrawn"]["reason"]
    # What each of them sees afterwards: the sender why, recipients no broken bubble.
    (mine,) = alice.messages(chat_id)
    assert "longer than the limit" in mine["withdrawn"]["reason"]
    for user in (bob, cid):
        (theirs,) = user.messages(chat_id)
        assert theirs["deleted"] is True and theirs["media"] is None
        assert theirs["withdrawn"] == mine["withdrawn"]
        assert_problem(user.http.get(f"/media/{posted['media']['id']}/content"), 404)
        assert user.chat(chat_id)["unread_count"] == 0
