"""`voxbox sync DIR`: a folder of every voice note and audio file, tagged, incremental."""

from __future__ import annotations

import re

import mutagen

from support.api import client_id, ok
from support.audio import decoded_duration, encode
from support.cli import login, voxbox
from support.cli import ok as cli_ok
from support.tus import upload


def post_audio(user, chat_id: str, data: bytes, filename: str, kind: str) -> dict:
    uid = upload(user.http, data, filename=filename, kind=kind, chat_id=chat_id)
    body = {"client_id": client_id(), "kind": kind, "upload_id": uid}
    return ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)


def test_sync_mirrors_tags_and_runs_again_for_free(make_user, server, tmp_path) -> None:
    alice = make_user(display_name="Alice")
    bob = make_user(display_name="Bob")
    chat_id = alice.direct_with(bob)
    voice = post_audio(bob, chat_id, encode(1.5, "ogg", "libopus"), "note.ogg", "voice")
    post_audio(alice, chat_id, encode(2.0, "mp3", "libmp3lame"), "Our song: take 1?.mp3", "audio")
    config = login(server, alice, tmp_path / "alice")
    folder = tmp_path / "Voice"

    first = voxbox(config, "sync", str(folder))

    assert first.returncode == 0, first.stderr
    assert "2 downloaded, 0 already there." in first.stderr
    [note] = list((folder / "Bob" / "Voice Notes").rglob("*.opus"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d Bob\.opus", note.name)
    assert re.fullmatch(r"\d{4}-\d\d", note.parent.name)
    assert abs(decoded_duration(note) - 1.5) < 0.1
    tags = mutagen.File(note, easy=True)
    assert tags["artist"] == ["Bob"] and tags["album"] == ["Bob"]
    assert tags["date"] == [note.name[:10]] and "Voice note from Bob" in tags["title"][0]
    song = folder / "Bob" / "Audio" / "Our song take 1.mp3"  # the server keeps safe names
    assert abs(decoded_duration(song) - 2.0) < 0.2
    assert mutagen.File(song, easy=True)["artist"] == ["Alice"]  # ID3

    second = voxbox(config, "sync", str(folder))
    assert "0 downloaded, 2 already there." in second.stderr

    # Deleted for everyone: kept unless --mirror, which removes only what sync wrote.
    ok(bob.http.delete(f"/messages/{voice['id']}", params={"scope": "everyone"}), 204)
    (folder / "my notes.txt").write_text("mine")
    cli_ok(voxbox(config, "sync", str(folder)))
    assert note.exists()
    mirrored = voxbox(config, "sync", str(folder), "--mirror")
    assert "0 downloaded, 1 already there, 1 removed." in mirrored.stderr
    assert not note.exists() and song.exists() and (folder / "my notes.txt").exists()
