"""Client CLI commands without a server: formatting and the failure paths."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from voxbox.cli import client_commands, search_commands
from voxbox.cli.client_commands import (
    _server_root,
    chat_label,
    describe_event,
    message_preview,
    names,
    receipts_table,
    transcript_line,
)
from voxbox.cli.search_commands import before_time, clock, describe_hit


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("VOXBOX_CONFIG_DIR", str(tmp_path / "conf"))
    app = typer.Typer()
    client_commands.register(app)
    search_commands.register(app)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_every_command_has_help(app: typer.Typer) -> None:
    runner = CliRunner()
    commands = ["login", "register", "logout", "me", "chats", "send", "listen", "info"]
    for command in [*commands, "search", "inbox"]:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


@pytest.mark.parametrize(
    "args",
    [["chats"], ["send", "self", "--text", "x"], ["listen"], ["logout"], ["search", "x"], ["me"]],
)
def test_not_logged_in(app: typer.Typer, args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Error: Not logged in" in result.output
    assert "voxbox login" in result.output


def test_unreachable_server(app: typer.Typer, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("secret-pass\n")
    url = f"http://127.0.0.1:{free_port()}"
    args = ["login", url, "--handle", "ann", "--password-file", str(password)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Error: Cannot reach the server" in result.output
    assert not (tmp_path / "conf" / "credentials.json").exists()


def test_login_rejects_a_non_http_url(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["login", "ftp://voxbox.example.org", "--handle", "ann"])
    assert result.exit_code == 2


def test_an_address_without_a_scheme_is_taken_as_a_browser_would() -> None:
    assert _server_root("127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert _server_root("localhost:8080/api/v1/") == "http://localhost:8080"
    assert _server_root("voxbox.example.org") == "https://voxbox.example.org"


def message(**fields: Any) -> dict[str, Any]:
    base = {"kind": "text", "text": "", "media": None, "deleted": False, "view_once": False}
    return base | fields


def test_message_preview() -> None:
    assert message_preview(message(text="hello\nworld")) == "hello …"
    assert message_preview(message(text="x", deleted=True)) == "(deleted)"
    voice = message(kind="voice", text=None, media={"duration_ms": 72_400, "filename": None})
    assert message_preview(voice) == "Voice message (1:12)"
    once = message(kind="voice", text=None, view_once=True)
    assert message_preview(once) == "Voice message, view once"
    audio = message(kind="audio", text="listen", media={"duration_ms": 5000, "filename": "a.mp3"})
    assert message_preview(audio) == "Audio a.mp3 (0:05): listen"


def test_names() -> None:
    assert names(["bob"]) == "bob"
    assert names(["ann", "bob"]) == "ann and bob"
    assert names(["ann", "bob", "cid"]) == "ann, bob and cid"
    assert names(["ann", "bob", "cid", "dee"]) == "ann, bob and 2 others"


def test_receipts_table() -> None:
    console = Console(width=120, record=True)
    console.print(
        receipts_table(
            [
                {
                    "handle": "bob",
                    "display_name": "Bob",
                    "delivered_at": "2026-01-02T03:04:05Z",
                    "read_at": "2026-01-02T03:05:05Z",
                    "played_at": None,
                },
                {
                    "handle": "cid",
                    "display_name": "Cid",
                    "delivered_at": None,
                    "read_at": None,
                    "played_at": None,
                },
            ]
        )
    )
    text = console.export_text()
    assert "Read by 1 of 2, delivered to 1 of 2." in text
    [cid_row] = [line for line in text.splitlines() if line.strip().startswith("cid")]
    assert cid_row.split()[-3:] == ["-", "-", "-"]


def test_chat_label() -> None:
    members = [{"handle": "ann"}, {"handle": "bob"}]
    assert chat_label({"kind": "direct", "members": members}, "ann") == "bob"
    assert chat_label({"kind": "self", "title": "Notes", "members": members[:1]}, "ann") == "self"
    assert chat_label({"kind": "group", "title": "family"}, "ann") == "family"


def test_describe_event() -> None:
    chat = {"id": "c1", "kind": "group", "title": "family"}
    created = {"seq": 1, "type": "message.created", "data": message(sender="bob", text="hi")}
    assert describe_event(created, chat, "ann").plain == "[family] bob: hi"
    receipt = {
        "seq": 2,
        "type": "receipt",
        "data": {"message_id": "m1", "chat_id": "c1", "handle": "bob", "kind": "read"},
    }
    assert describe_event(receipt, None, "ann").plain == "[c1] bob read m1"
    media = {"id": "md1", "kind": "audio", "filename": "talk.m4a", "duration_ms": 125_000}
    ready = {"type": "media.ready", "data": {**media, "state": "ready"}}
    carrier = message(sender="bob", text=None)
    assert describe_event(ready, chat, "ann", carrier).plain == (
        "[family] bob: audio file talk.m4a ready (2:05)"
    )
    failed = {"type": "media.failed", "data": {**media, "kind": "voice", "error": "not audio"}}
    assert describe_event(failed, None, "ann").plain == (
        "voice message could not be processed: not audio"
    )
    coalesced = {
        "seq": 4,
        "type": "receipt",
        "data": {"message_id": "m1", "chat_id": "c1", "handles": list("abcde"), "handle": "a"},
    }
    coalesced["data"]["kind"] = "delivered"
    assert describe_event(coalesced, chat, "ann").plain == "[family] a, b and 3 others received m1"
    typing = {"type": "presence", "data": {"chat_id": "c1", "handle": "bob", "state": "typing"}}
    assert describe_event(typing, chat, "ann").plain == "[family] bob is typing…"
    renamed = {"seq": 3, "type": "chat.updated", "data": chat}
    assert describe_event(renamed, chat, "ann").plain == "[family] chat updated"


def test_a_ready_transcript_is_shown_under_its_voice_message() -> None:
    chat = {"id": "c1", "kind": "group", "title": "family"}
    said = {"state": "ready", "text": "and mister john", "language": "en", "words": []}
    voice = message(kind="voice", text=None, sender="bob", media={"duration_ms": 7000})
    pending = {"type": "message.created", "data": voice | {"transcript": {"state": "pending"}}}
    assert describe_event(pending, chat, "ann").plain == "[family] bob: Voice message (0:07)"
    ready = {"type": "message.updated", "data": voice | {"transcript": said}}
    assert describe_event(ready, chat, "ann").plain.splitlines() == [
        "[family] bob: Voice message (0:07) (transcribed)",
        "  “and mister john”",
    ]
    # A forward of a transcribed note comes with its transcript at once.
    forwarded = {"type": "message.created", "data": voice | {"transcript": said}}
    assert describe_event(forwarded, chat, "ann").plain.splitlines()[1] == "  “and mister john”"
    failed = {"state": "failed", "error": "Longer than 30 minutes: not transcribed."}
    gave_up = {"type": "message.updated", "data": voice | {"transcript": failed}}
    assert describe_event(gave_up, chat, "ann").plain == (
        "[family] bob: Voice message (0:07) (not transcribed: Longer than 30 minutes: not "
        "transcribed.)"
    )
    deleted = {"type": "message.updated", "data": voice | {"deleted": True, "transcript": None}}
    assert describe_event(deleted, chat, "ann").plain == "[family] bob: (deleted) (updated)"
    nothing = transcript_line({"transcript": {"state": "ready", "text": ""}})
    assert nothing is not None and nothing.plain == "  (no words recognised)"
    long = transcript_line({"transcript": {"state": "ready", "text": "word " * 1000}})
    assert long is not None and long.plain.endswith("word …”") and len(long.plain) < 1010


def test_a_search_hit_shows_where_and_highlights_the_matched_words() -> None:
    hit = {
        "message_id": "m1",
        "chat_id": "c1",
        "kind": "voice",
        "sender": "bob",
        "sender_name": None,
        "snippet": "… had then leisure to consider",
        "highlights": [[11, 18], [22, 30]],
        "offset_ms": 65_900,
        "created_at": "2026-01-02T03:04:05Z",
    }
    line = describe_hit(hit, "family")
    first, second = line.plain.splitlines()
    assert first.startswith("[family] bob  20") and first.endswith("  voice message at 1:05  m1")
    assert second == "  … had then leisure to consider"
    console = Console(record=True, force_terminal=True, color_system="standard", width=200)
    console.print(line)
    shown = console.export_text(styles=True)
    assert "\x1b[1;33mleisure\x1b[0m" in shown and "\x1b[1;33mconsider\x1b[0m" in shown
    text = describe_hit(hit | {"kind": "text", "offset_ms": None, "sender_name": "Mum"}, "self")
    assert text.plain.splitlines()[0].startswith("[self] Mum  ")
    assert "voice message" not in text.plain


def test_times_for_search() -> None:
    assert clock(0) == "0:00" and clock(65_999) == "1:05" and clock(3_600_000) == "60:00"
    assert before_time("2026-12-01T18:30:00+01:00") == "2026-12-01T18:30:00+01:00"
    assert before_time("2026-12-01T00:00Z") == "2026-12-01T00:00:00+00:00"
    local = before_time("2026-12-01")
    assert local is not None and local.startswith("2026-12-01T00:00:00")
    with pytest.raises(typer.BadParameter):
        before_time("yesterday")
