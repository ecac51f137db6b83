"""Voice and audio messages: processing, playback with Range/ETag, access, view-once, dedupe."""

from __future__ import annotations

import hashlib
import io
import os

import av
import pytest

from support.api import assert_problem, client_id, ok
from support.audio import chunks, decoded_duration, encode, wav_bytes, webm_recording
from support.tus import record, upload


def send_voice(user, chat_id: str, data: bytes, **extra) -> dict:
    uid = record(
        user.http,
        chunks(data, 3),
        chat_id=chat_id,
        kind="voice",
        content_type="audio/webm;codecs=opus",
    )
    r = user.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "voice", "upload_id": uid, **extra},
    )
    return ok(r, 201)


def send_audio(user, chat_id: str, data: bytes, filename: str, kind: str = "audio") -> dict:
    uid = upload(user.http, data, pieces=2, filename=filename)
    r = user.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": kind, "upload_id": uid},
    )
    return ok(r, 201)


def test_voice_message_from_a_recording(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    message = send_voice(alice, chat_id, webm_recording(3))
    media = message["media"]
    assert message["kind"] == "voice"
    assert media["kind"] == "voice"
    assert media["content_type"] == "audio/ogg; codecs=opus"
    assert abs(media["duration_ms"] - 3000) <= 30
    assert len(media["waveform"]) == 64
    assert all(0 <= v <= 255 for v in media["waveform"])
    assert len(set(media["waveform"])) > 5  # speech-like sound gives a varied waveform
    played = bob.http.get(f"/media/{media['id']}/content", params={"format": "ogg"})
    assert played.status_code == 200
    assert played.headers["content-type"].startswith("audio/ogg")
    assert abs(decoded_duration(played.content) - 3.0) < 0.03
    assert int(played.headers["content-length"]) == media["size"] == len(played.content)


@pytest.mark.parametrize(
    ("filename", "container", "codec"),
    [("memo.m4a", "ipod", "aac"), ("song.mp3", "mp3", "libmp3lame"), ("x.flac", "flac", "flac")],
)
def test_audio_file_keeps_its_original_and_gets_an_ogg(make_user, filename, container, codec):
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    data = encode(2, container, codec)
    message = send_audio(alice, chat_id, data, filename)
    media = message["media"]
    assert media["filename"] == filename
    assert media["size"] == len(data)
    assert abs(media["duration_ms"] - 2000) <= 50
    original = bob.http.get(f"/media/{media['id']}/content")
    assert original.content == data
    assert filename in original.headers["content-disposition"]
    ogg = bob.http.get(f"/media/{media['id']}/content", params={"format": "ogg"})
    with av.open(io.BytesIO(ogg.content)) as f:
        assert f.streams.audio[0].codec_context.name in ("opus", "libopus")
        assert f.streams.audio[0].channels == 1


def test_an_audio_file_sent_as_voice_becomes_a_voice_note(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    message = send_audio(alice, chat_id, wav_bytes(2), "note.wav", kind="voice")
    assert message["media"]["content_type"] == "audio/ogg; codecs=opus"
    r = bob.http.get(f"/media/{message['media']['id']}/content")  # a voice note's original: Ogg
    assert r.headers["content-type"].startswith("audio/ogg")


def test_range_etag_and_mp3(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    media_id = send_voice(alice, chat_id, webm_recording(2))["media"]["id"]
    url = f"/media/{media_id}/content"
    whole = bob.http.get(url, params={"format": "ogg"})
    size = len(whole.content)
    part = bob.http.get(url, params={"format": "ogg"}, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-99/{size}"
    assert part.content == whole.content[10:100]
    stale = bob.http.get(
        url, params={"format": "ogg"}, headers={"Range": "bytes=10-99", "If-Range": '"other"'}
    )
    assert stale.status_code == 200
    assert stale.content == whole.content
    tail = bob.http.get(url, params={"format": "ogg"}, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206
    assert tail.content == whole.content[-50:]
    beyond = bob.http.get(url, params={"format": "ogg"}, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    again = bob.http.get(
        url, params={"format": "ogg"}, headers={"If-None-Match": whole.headers["etag"]}
    )
    assert again.status_code == 304
    mp3 = bob.http.get(url, params={"format": "mp3"})
    assert mp3.status_code == 200
    assert mp3.headers["content-type"] == "audio/mpeg"
    assert abs(decoded_duration(mp3.content) - 2.0) < 0.1
    assert bob.http.get(url, params={"format": "mp3"}).content == mp3.content  # cached


def test_non_members_cannot_fetch_media_even_with_its_id(make_user) -> None:
    alice, bob, eve = make_user(), make_user(), make_user()
    chat_id = alice.direct_with(bob)
    media_id = send_voice(alice, chat_id, webm_recording(1))["media"]["id"]
    assert_problem(eve.http.get(f"/media/{media_id}"), 404)
    assert_problem(eve.http.get(f"/media/{media_id}/content"), 404)
    assert ok(bob.http.get(f"/media/{media_id}"))["id"] == media_id


def test_delete_for_everyone_cuts_access_and_frees_the_blob(make_server, make_user) -> None:
    server = make_server()  # its own blobs: no other test's recording shares them
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    message = send_voice(alice, chat_id, webm_recording(1))
    media_id = message["media"]["id"]
    ogg = bob.http.get(f"/media/{media_id}/content", params={"format": "ogg"}).content
    sha = hashlib.sha256(ogg).hexdigest()
    blob = server.data_dir / "blobs" / sha[:2] / sha[2:4] / f"{sha}.ogg"
    local = not server.settings.get("VOXBOX_STORAGE_URL")  # local blobs: look on disk
    assert blob.exists() or not local
    r = alice.http.delete(f"/messages/{message['id']}", params={"scope": "everyone"})
    assert r.status_code == 204
    assert_problem(bob.http.get(f"/media/{media_id}/content"), 404)
    assert_problem(alice.http.get(f"/media/{media_id}"), 404)  # nothing refers to it any more
    assert bob.messages(chat_id)[-1]["media"] is None
    assert not blob.exists()


async def test_view_once_is_gone_after_the_first_play(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    async with alice.events() as a_ev:
        message = send_voice(alice, chat_id, webm_recording(1), view_once=True)
        media_id = message["media"]["id"]
        assert bob.http.get(f"/media/{media_id}/content").status_code == 200
        assert bob.http.post(f"/messages/{message['id']}/played").status_code == 204
        receipt = await a_ev.next_event("receipt", where=lambda e: e["data"]["kind"] == "played")
        assert receipt["data"]["handle"] == bob.handle
    assert_problem(bob.http.get(f"/media/{media_id}/content"), 404)
    assert bob.messages(chat_id)[-1]["media"] is None
    assert alice.messages(chat_id)[-1]["media"]["id"] == media_id  # the sender keeps it
    assert bob.handle in alice.messages(chat_id)[-1]["receipts"]["played"]
    assert_problem(
        alice.http.post(f"/messages/{message['id']}/forward", json={"chat_ids": [chat_id]}), 422
    )


def test_resending_the_same_audio_stores_no_second_blob(make_server, make_user) -> None:
    server = make_server()
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    data = encode(2, "mp3", "libmp3lame")
    first = send_audio(alice, chat_id, data, "a.mp3")["media"]
    second = send_audio(bob, chat_id, data, "b.mp3")["media"]
    assert first["id"] != second["id"]
    assert first["duration_ms"] == second["duration_ms"]
    assert first["waveform"] == second["waveform"]
    forwarded = ok(
        alice.http.post(
            f"/messages/{bob.messages(chat_id)[-1]['id']}/forward",
            json={"chat_ids": [alice.self_chat()["id"]]},
        ),
        201,
    )
    assert forwarded["messages"][0]["media"]["id"] == second["id"]
    if not server.settings.get("VOXBOX_STORAGE_URL"):  # local blobs: look on disk
        blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
        assert len(blobs) == 2  # the original and its Ogg rendition, once each


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 422),
        (os.urandom(5000), 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000, 415),
        (encode(3, "ogg", "libopus")[:1500], 422),
    ],
    ids=["empty", "random", "png", "truncated-ogg"],
)
def test_refused_files_leave_nothing_behind(make_user, server, data, status) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    if data:
        uid = upload(alice.http, data, filename="x.opus")
    else:
        from support.tus import create, upload_id

        uid = upload_id(create(alice.http, length=0, filename="x.opus"))
    r = alice.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "audio", "upload_id": uid},
    )
    assert_problem(r, status)
    assert bob.messages(chat_id) == []
    assert ok(alice.http.get("/uploads", params={"state": "open"}))["uploads"] == []
    if not server.settings.get("VOXBOX_STORAGE_URL"):  # local blobs: look on disk
        leftovers = [p for p in (server.data_dir / "tmp").rglob("*") if p.is_file()]
        assert leftovers == []


def test_voice_over_the_duration_limit_is_413(make_server, make_user) -> None:
    server = make_server(limits__voice_max_seconds=1)
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    uid = record(alice.http, chunks(webm_recording(3), 3), chat_id=chat_id, kind="voice")
    r = alice.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "voice", "upload_id": uid},
    )
    assert_problem(r, 413)


def test_same_client_id_after_sending_returns_the_message(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    uid = upload(alice.http, wav_bytes(1), filename="a.wav")
    body = {"client_id": client_id(), "kind": "audio", "upload_id": uid}
    first = ok(alice.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    again = ok(alice.http.post(f"/chats/{chat_id}/messages", json=body), 200)
    assert again["id"] == first["id"]


async def test_long_files_are_processed_in_the_background(make_server, make_user) -> None:
    """Past the inline limit the message is posted at once; media.ready follows."""
    server = make_server(limits__inline_max_seconds=1)
    alice, bob = make_user(server=server), make_user(server=server)
    chat_id = alice.direct_with(bob)
    async with bob.events() as ev:
        message = send_audio(alice, chat_id, encode(3, "mp3", "libmp3lame"), "long.mp3")
        assert message["media"]["state"] == "processing"
        assert message["media"]["duration_ms"] is None
        assert_problem(
            bob.http.get(f"/media/{message['media']['id']}/content", params={"format": "ogg"}), 409
        )
        ready = await ev.next_event("media.ready", timeout=30)
    assert ready["data"]["id"] == message["media"]["id"]
    assert ready["data"]["state"] == "ready"
    assert abs(ready["data"]["duration_ms"] - 3000) <= 60
    assert len(ready["data"]["waveform"]) == 64
    ogg = bob.http.get(f"/media/{message['media']['id']}/content", params={"format": "ogg"})
    assert abs(decoded_duration(ogg.content) - 3.0) < 0.1
