"""Importing chats exported from WhatsApp (Android and iOS) and Telegram: the right messages,
times, senders and playable voice notes; the same file twice adds nothing; hostile archives
(path traversal, zip bombs, missing files) and unreadable chat files are refused or reported."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from support.api import assert_problem, ok
from support.audio import decoded_duration, encode
from support.cli import login, voxbox
from support.cli import ok as cli_ok

ANDROID = """\
25/11/2026, 14:03 - Messages and calls are end-to-end encrypted. No one outside of this chat...
25/11/2026, 14:03 - Mum: Hello love
how are you?
25/11/2026, 14:05 - Me: Fine! Listen to this
25/11/2026, 14:06 - Mum: PTT-20261125-WA0003.opus (file attached)
25/11/2026, 14:07 - Mum: <Media omitted>
"""

IOS = (
    "[7/4/26, 2:03:12\u202fPM] Alice: Happy fourth!\n"
    "[7/4/26, 2:03:40\u202fPM] Alice: \u200e<attached: 00000002-AUDIO-2026-07-04-14-03-40.opus>\n"
    "[7/4/26, 2:05:01\u202fPM] Bob: \u200eimage omitted\n"
)


def zipped(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def post_import(user, data: bytes, name: str, **fields):
    if "mapping" in fields:
        fields["mapping"] = json.dumps(fields["mapping"])
    return user.http.post(
        "/imports", data=fields, files={"file": (name, data, "application/octet-stream")}
    )


def run_import(user, data: bytes, name: str, **fields) -> dict:
    started = ok(post_import(user, data, name, **fields), 202)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = ok(user.http.get(f"/imports/{started['id']}"))
        if task["state"] != "running":
            assert task["state"] == "ready", task
            return task
        time.sleep(0.1)  # tasks have no event; poll as the web app does
    raise AssertionError("the import is still running")


def history(user, chat_id: str) -> list[dict]:
    return ok(user.http.get(f"/chats/{chat_id}/messages", params={"limit": 200}))["messages"]


def test_a_whatsapp_android_export_becomes_a_chat_with_a_playable_voice_note(make_user) -> None:
    me = make_user(display_name="Sam")
    note = encode(2.0, "ogg", "libopus")
    export = zipped({"WhatsApp Chat with Mum.txt": ANDROID, "PTT-20261125-WA0003.opus": note})

    as_me = {"Me": me.handle}
    task = run_import(me, export, "Chat.zip", timezone="Europe/London", mapping=as_me)

    assert task["counts"]["messages"] == 4 and task["counts"]["voice_notes"] == 1
    assert task["skipped"] == [{"line": 1, "reason": "system message"}]
    chat = ok(me.http.get(f"/chats/{task['chat_id']}"))
    assert chat["title"] == "Mum" and [m["handle"] for m in chat["members"]] == [me.handle]
    hello, mine, voice, omitted = history(me, task["chat_id"])
    assert hello["text"] == "Hello love\nhow are you?" and hello["sender_name"] == "Mum"
    assert hello["created_at"].startswith("2026-11-25T14:03:00")  # London is on UTC in November
    assert hello["imported"] == "whatsapp"
    assert mine["sender"] == me.handle and mine["sender_name"] is None
    assert voice["kind"] == "voice" and voice["sender_name"] == "Mum"
    assert abs(voice["media"]["duration_ms"] - 2000) < 100 and len(voice["media"]["waveform"]) == 64
    played = me.http.get(f"/media/{voice['media']['id']}/content")
    assert abs(decoded_duration(played.content) - 2.0) < 0.1
    assert omitted["text"] == "<Media omitted>"

    again = run_import(me, export, "Chat.zip", timezone="Europe/London", mapping=as_me)
    assert again["chat_id"] == task["chat_id"]
    assert again["counts"]["messages"] == 0 and again["counts"]["already_there"] == 4
    assert len(history(me, task["chat_id"])) == 4


def test_a_whatsapp_ios_export_in_12_hour_us_format_lands_at_the_right_instant(make_user) -> None:
    me = make_user()
    bob = make_user(display_name="Bob")
    export = zipped(
        {
            "_chat.txt": IOS,
            "00000002-AUDIO-2026-07-04-14-03-40.opus": encode(1.0, "ogg", "libopus"),
        }
    )

    zone, mapping = "America/New_York", {"Bob": bob.handle}
    task = run_import(me, export, "WhatsApp Chat - Alice.zip", timezone=zone, mapping=mapping)

    assert ok(me.http.get(f"/chats/{task['chat_id']}"))["title"] == "Alice"
    text, voice, image = history(me, task["chat_id"])
    assert text["created_at"].startswith("2026-07-04T18:03:12")  # 2:03 PM EDT
    assert voice["kind"] == "voice" and voice["media"]["duration_ms"] > 900
    assert image["sender"] == bob.handle and image["sender_name"] is None


def test_a_telegram_export_with_its_voice_messages(make_user) -> None:
    me = make_user()
    result = {
        "name": "Grandpa",
        "type": "personal_chat",
        "id": 42,
        "messages": [
            {"id": 1, "type": "service", "date": "2026-11-20T09:00:00", "action": "phone_call"},
            {
                "id": 2,
                "type": "message",
                "date": "2026-11-20T09:01:00",
                "date_unixtime": "1795165260",
                "from": "Grandpa",
                "from_id": "user7",
                "text": ["Listen to ", {"type": "bold", "text": "this"}],
            },
            {
                "id": 3,
                "type": "message",
                "date": "2026-11-20T09:02:00",
                "date_unixtime": "1795165320",
                "from": "Grandpa",
                "from_id": "user7",
                "file": "voice_messages/audio_1@20-11-2026_09-02-00.ogg",
                "media_type": "voice_message",
                "mime_type": "audio/ogg",
                "duration_seconds": 2,
                "text": "",
            },
        ],
    }
    export = zipped(
        {
            "ChatExport_2026-11-20/result.json": json.dumps(result),
            "ChatExport_2026-11-20/voice_messages/audio_1@20-11-2026_09-02-00.ogg": encode(
                1.5, "ogg", "libopus"
            ),
        }
    )

    task = run_import(me, export, "ChatExport_2026-11-20.zip")

    assert ok(me.http.get(f"/chats/{task['chat_id']}"))["title"] == "Grandpa"
    text, voice = history(me, task["chat_id"])
    assert text["text"] == "Listen to this" and text["imported"] == "telegram"
    assert text["created_at"].startswith("2026-11-20T")
    assert voice["kind"] == "voice" and abs(voice["media"]["duration_ms"] - 1500) < 100


def test_hostile_archives_are_refused_or_reported(make_user, tmp_path: Path) -> None:
    me = make_user()
    chat = (
        "25/11/2026, 14:03 - Eve: ../../evil.opus (file attached)\n"
        "25/11/2026, 14:04 - Eve: PTT-bomb.opus (file attached)\n"
        "25/11/2026, 14:05 - Eve: PTT-gone.opus (file attached)\n"
        "25/11/2026, 14:06 - Eve: still here\n"
    )
    export = zipped(
        {
            "WhatsApp Chat with Eve.txt": chat,
            "../../evil.opus": encode(1.0, "ogg", "libopus"),
            "PTT-bomb.opus": bytes(20 * 1024 * 1024),  # deflates about 1000-fold
        }
    )

    task = run_import(me, export, "eve.zip")

    reasons = {s["line"]: s["reason"] for s in task["skipped"]}
    assert "outside the archive" in reasons[1]
    assert "zip bomb" in reasons[2]
    assert "not in the archive" in reasons[3]
    [kept] = history(me, task["chat_id"])
    assert kept["text"] == "still here"

    bomb = zipped({"WhatsApp Chat with Eve.txt": "\n" * (20 * 1024 * 1024)})
    assert "zip bomb" in assert_problem(post_import(me, bomb, "b.zip"), 422, "invalid")["detail"]


def test_an_unreadable_chat_file_is_a_422_quoting_its_first_line(make_user) -> None:
    me = make_user()
    before = ok(me.http.get("/chats"))
    text = "Dear diary,\ntoday I exported nothing.\n"
    problem = assert_problem(post_import(me, text.encode(), "diary.txt"), 422, "invalid")
    assert "Dear diary," in problem["detail"] and "line 1" in problem["detail"]
    assert_problem(post_import(me, b"PK\x03\x04broken", "x.zip"), 422, "invalid")
    assert_problem(post_import(me, zipped({"notes.md": "hi"}), "x.zip"), 422, "invalid")
    bad_zone = post_import(me, ANDROID.encode(), "chat.txt", timezone="Mars/Olympus")
    assert "time zone" in assert_problem(bad_zone, 422, "invalid")["detail"]
    bad_map = post_import(me, ANDROID.encode(), "chat.txt", mapping={"Mum": "nobody-here"})
    assert "nobody-here" in assert_problem(bad_map, 422, "invalid")["detail"]
    assert ok(me.http.get("/chats")) == before


def test_import_from_the_cli(make_user, server, tmp_path: Path) -> None:
    me = make_user()
    export = tmp_path / "WhatsApp Chat with Mum.txt"
    export.write_text(ANDROID.replace("PTT-20261125-WA0003.opus (file attached)", "see you"))
    config = login(server, me, tmp_path / "me")

    args = ["import", str(export), "--timezone", "Europe/London", "--map", f"Me={me.handle}"]
    out = cli_ok(voxbox(config, *args))

    assert "messages: 4" in out
    chats = ok(me.http.get("/chats"))["chats"]
    mum = next(c for c in chats if c["title"] == "Mum")
    assert [m["text"] for m in history(me, mum["id"])][:3] == [
        "Hello love\nhow are you?",
        "Fine! Listen to this",
        "see you",
    ]
    again = cli_ok(voxbox(config, "import", str(export), "--timezone", "Europe/London"))
    assert "messages: 0" in again
