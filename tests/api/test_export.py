"""Exporting a chat: a streamed zip with chat.txt (WhatsApp's format), messages.json, the media
and an offline chat.html; only what the caller can see."""

from __future__ import annotations

import io
import json
import re
import zipfile

from support.api import assert_problem, ok
from support.audio import decoded_duration
from support.cli import login, voxbox
from support.cli import ok as cli_ok
from support.tus import send_voice_note

LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d), (\d\d:\d\d:\d\d)\] (.+?): (.*)$")


def export(user, chat_id: str, **params) -> zipfile.ZipFile:
    r = user.http.get(f"/chats/{chat_id}/export", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(r.content))


def test_the_export_holds_the_chat_its_voice_notes_and_a_page_to_play_them(
    make_user, server
) -> None:
    alice = make_user(display_name="Alice")
    bob = make_user(display_name="Bob")
    chat_id = alice.direct_with(bob)
    hello = alice.send(chat_id, "hello Bob\nsecond line")
    voice = send_voice_note(bob, chat_id, 1.5)
    gone = alice.send(chat_id, "oops")
    ok(alice.http.delete(f"/messages/{gone['id']}", params={"scope": "everyone"}), 204)

    zf = export(alice, chat_id, media="true")

    assert zf.testzip() is None
    names = zf.namelist()
    assert names[:2] == ["chat.txt", "messages.json"] and names[-1] == "chat.html"
    lines = zf.read("chat.txt").decode().splitlines()
    first = LINE.match(lines[0])
    assert first is not None and first.group(3) == "Alice"
    assert first.group(4) == "hello Bob" and lines[1] == "second line"
    voice_line = LINE.match(lines[2])
    assert voice_line is not None and voice_line.group(3) == "Bob"
    attached = re.fullmatch(
        r"<attached: (00000002-VOICE-\d{4}(-\d\d){5}\.opus)>", voice_line.group(4)
    )
    assert attached is not None, voice_line.group(4)
    assert lines[3].endswith("Alice: This message was deleted")

    records = json.loads(zf.read("messages.json"))
    assert [m["id"] for m in records] == [hello["id"], voice["id"], gone["id"]]
    note = records[1]
    assert note["sender"] == bob.handle and note["kind"] == "voice"
    assert note["file"] == f"media/{attached.group(1)}"
    assert abs(note["duration_ms"] - 1500) < 100 and len(note["waveform"]) == 64
    assert records[2]["deleted"] and records[2]["text"] is None
    # No transcripts on this server (engine off): said so for the voice note, none for the rest.
    assert note["transcript"] == {
        "state": "off", "text": None, "language": None, "words": [], "error": None
    }  # fmt: skip
    assert records[0]["transcript"] is None and records[2]["transcript"] is None
    # the voice note itself, playable
    assert abs(decoded_duration(zf.read(note["file"])) - 1.5) < 0.1
    page = zf.read("chat.html").decode()
    assert (
        voice["id"] in page and "<script src" not in page and "http" not in page.split("<body>")[1]
    )


def test_without_media_the_notes_are_omitted(make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    send_voice_note(alice, chat_id, 1.0)

    zf = export(bob, chat_id, media="false")

    assert not [n for n in zf.namelist() if n.startswith("media/")]
    assert zf.read("chat.txt").decode().rstrip().endswith(": <Media omitted>")
    assert json.loads(zf.read("messages.json"))[0]["file"] is None


def test_only_members_export_and_only_what_they_can_see(make_user) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    group = alice.group("Trip", bob)
    alice.send(group, "before carol")
    ok(alice.http.post(f"/chats/{group}/members", json={"handle": carol.handle}), 200)
    alice.send(group, "after carol")

    assert_problem(make_user().http.get(f"/chats/{group}/export"), 404, "not_found")
    texts = [m["text"] for m in json.loads(export(carol, group).read("messages.json"))]
    assert texts == ["after carol"]


def test_voxbox_export_writes_the_zip(make_user, server, tmp_path) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "keep this")
    send_voice_note(bob, chat_id, 1.0)
    config = login(server, alice, tmp_path / "alice")

    out = cli_ok(voxbox(config, "export", bob.handle, "-o", str(tmp_path / "chat.zip")))

    assert out.strip() == str(tmp_path / "chat.zip")
    with zipfile.ZipFile(tmp_path / "chat.zip") as zf:
        assert len([n for n in zf.namelist() if n.startswith("media/")]) == 1
        assert "keep this" in zf.read("chat.txt").decode()
    assert not (tmp_path / "chat.zip.part").exists()
    # an existing file is kept unless --force
    refused = voxbox(config, "export", bob.handle, "-o", str(tmp_path / "chat.zip"))
    assert refused.returncode != 0 and "File exists" in refused.stderr
