"""What was said in a voice message, where a person reads it outside the web app: the CLI
(`voxbox listen`, `search`, `inbox`, `me --transcribe`) and a chat's export (messages.json,
chat.html), through a running server transcribing LibriVox clips with pocketsphinx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.test_cli import listening
from api.test_export import export
from api.test_transcripts import CLIPS, send_clip
from support.api import make_user_on, ok
from support.cli import login, voxbox
from support.cli import ok as cli_ok
from support.factory import ServerFactory
from support.server import TRANSCRIBING, ServerProcess

TRANSCRIPT_WAIT = 60  # seconds: the first transcript also starts the engine's process


@pytest.fixture(scope="module")
def speaking(server_factory: ServerFactory) -> ServerProcess:
    """The module's server, transcribing."""
    return server_factory.start(env=TRANSCRIBING)


def clock(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def page_messages(page: str) -> list[dict[str, Any]]:
    """The messages chat.html shows, as its script reads them."""
    data = page.split("const MESSAGES = [", 1)[1].split("\n];\n", 1)[0]
    return list(json.loads("[" + data.replace("<\\/", "</").strip().rstrip(",") + "]"))


async def test_the_export_carries_what_was_said(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice", display_name="Alice")
    bob = make_user_on(speaking, prefix="bob")
    chat_id = alice.direct_with(bob)
    text = alice.send(chat_id, "listen to this")
    async with alice.events(after=alice.latest_seq()) as ev:
        sent = send_clip(alice, chat_id, "0870")
        updated = await ev.next_event(
            "message.updated", where=lambda e: e["data"]["id"] == sent["id"], timeout=60
        )
    transcript = updated["data"]["transcript"]
    assert transcript["state"] == "ready" and "leisure" in transcript["text"].split()

    zf = export(bob, chat_id, media="true")

    records = {r["id"]: r for r in json.loads(zf.read("messages.json"))}
    note = records[sent["id"]]
    # As the API shows it: the text, its language and every word with its timing.
    assert note["transcript"] == transcript
    assert note["transcript"]["language"] == "en"
    leisure = next(w for w in note["transcript"]["words"] if w["w"] == "leisure")
    assert 0 <= leisure["start_ms"] < leisure["end_ms"] <= note["duration_ms"]
    assert records[text["id"]]["transcript"] is None  # a text has none
    # chat.html shows it under the voice note, in a "Transcript" that opens, with no network.
    page = zf.read("chat.html").decode()
    shown = {m["id"]: m for m in page_messages(page)}
    assert shown[sent["id"]]["transcript"]["text"] == transcript["text"]
    assert shown[sent["id"]]["file"] == note["file"] and note["file"] in zf.namelist()
    script = page.split("<script>", 1)[1]
    assert 'createElement("details")' in script and 'summary.textContent = "Transcript"' in script
    assert "<script src" not in page and "http" not in page.split("<body>")[1]


@pytest.mark.timeout(120)
def test_listen_search_and_inbox_show_what_was_said(
    speaking: ServerProcess, tmp_path: Path
) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    chat_id = alice.direct_with(bob)
    bob_dir = login(speaking, bob, tmp_path / "bob")
    him = f"[{alice.handle}] {alice.handle}: Voice message"

    with listening(bob_dir, as_json=False) as listener:
        sent = send_clip(alice, chat_id, "0870")
        # The voice message shows up, then, once transcribed, what is said in it.
        done = listener.lines_until(lambda line: "(transcribed)" in line, TRANSCRIPT_WAIT)
        assert done[-1].startswith(him) and done[-1].rstrip().endswith("(transcribed)")
        assert [line for line in done[:-1] if line.startswith(him)], done
        assert not [line for line in done if line.startswith("  “")], done
        transcript = ok(bob.http.get(f"/messages/{sent['id']}"))["transcript"]
        [said] = listener.lines_until(lambda line: True)
        assert said == f"  “{transcript['text']}”\n" and "leisure" in said

        # Search finds it by a word only said, and says where it is said.
        head, snippet = cli_ok(voxbox(bob_dir, "search", "leisure")).splitlines()
        leisure = next(w for w in transcript["words"] if w["w"] == "leisure")
        assert head.startswith(f"[{alice.handle}] {alice.handle}  ")
        assert head.endswith(f"  voice message at {clock(leisure['start_ms'])}  {sent['id']}")
        assert "leisure" in snippet.split() and snippet.strip() in said
        assert cli_ok(voxbox(bob_dir, "search", "leisure", "--kind", "text")) == ""

        # The inbox lists it unplayed, with what is said.
        head, inbox_said = cli_ok(voxbox(bob_dir, "inbox")).splitlines()
        assert head.startswith(f"[{alice.handle}] {alice.handle}  ") and sent["id"] in head
        assert inbox_said + "\n" == said

        # A forward of it comes with its transcript at once.
        group = alice.group(f"club {alice.handle}", bob)
        forward = {"chat_ids": [group]}
        ok(alice.http.post(f"/messages/{sent['id']}/forward", json=forward), 201)
        there = f"[club {alice.handle}] {alice.handle}: Voice message"
        listener.lines_until(lambda line: line.startswith(there))
        assert listener.lines_until(lambda line: True) == [said]
        assert listener.interrupt() == 0


def test_turning_transcripts_off_from_the_cli_leaves_my_next_note_untranscribed(
    speaking: ServerProcess, tmp_path: Path
) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    alice_dir = login(speaking, alice, tmp_path / "alice")

    cli_ok(voxbox(alice_dir, "me", "--transcribe", "off"))
    clip = str(CLIPS / "0890.flac")
    message_id = cli_ok(voxbox(alice_dir, "send", bob.handle, clip, "--voice")).strip()
    assert ok(bob.http.get(f"/messages/{message_id}"))["transcript"]["state"] == "off"

    cli_ok(voxbox(alice_dir, "me", "--transcribe", "on"))
    clip = str(CLIPS / "0930.flac")  # another clip: the same audio is the same media
    message_id = cli_ok(voxbox(alice_dir, "send", bob.handle, clip, "--voice")).strip()
    transcript = ok(bob.http.get(f"/messages/{message_id}"))["transcript"]
    assert transcript["state"] in ("pending", "ready")
