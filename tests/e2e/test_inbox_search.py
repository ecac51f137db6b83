"""Transcripts, search and the voice inbox (UI.md "Transcripts, search and the voice inbox"):
"Play all unplayed" plays every chat's unplayed voice notes hands-free and marks them played;
"Show transcript" reveals what was said; "Search messages" finds a spoken word and plays the
voice note from it; the exported chat.html shows the transcript, offline."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from e2e.support import DESKTOP, PHONE, eventually
from e2e.ui import (
    Person,
    button,
    check_a11y,
    exported_chat_offline,
    role,
    shoot,
    status_icon,
)
from support.api import User, client_id, ok
from support.audio import RATE, encode_samples, speechlike
from support.factory import ServerFactory
from support.server import REPO_ROOT, TRANSCRIBING, ServerProcess
from support.tus import send_voice_note, upload

LIBRIVOX = REPO_ROOT / "tests" / "fixtures" / "librivox"

# What the page's media elements did: the second at which each play() got going (after any
# seek before it), and each seek's landing point.
MEDIA_LOG = """
(() => {
  const log = { starts: [], seeks: [] };
  Object.defineProperty(window, "__e2eMedia", { value: log });
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    const el = this;
    el.addEventListener("playing", () => log.starts.push(el.currentTime), { once: true });
    if (!el.__e2eSeeks) {
      el.__e2eSeeks = true;
      el.addEventListener("seeked", () => log.seeks.push(el.currentTime));
    }
    return play.apply(this, args);
  };
})();
"""


@pytest.fixture(scope="module")
def app_server(server_factory: ServerFactory) -> ServerProcess:
    """This module's server transcribes (pocketsphinx; the other test servers do not)."""
    return server_factory.start(TRANSCRIBING)


def send_voice_with_a_pause(user: User, chat_id: str) -> dict[str, Any]:
    """A 10 s voice note: 4 s of sound, 5 s of silence, 1 s of sound (Ogg/Opus). The first 4 s
    leave the test time to pause it before the skip, even on a busy machine."""
    samples = np.concatenate([speechlike(4.0), np.zeros(5 * RATE, np.float32), speechlike(1.0)])
    data = encode_samples(samples, "ogg", "libopus")
    uid = upload(user.http, data, filename="pause.ogg", kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    message: dict[str, Any] = ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    return message


def now_playing(sender: str, chat: str, position: str) -> re.Pattern[str]:
    """The inbox's status line: the sender, the chat ("Direct chat" for a direct one), "n of N"."""
    return re.compile(
        rf"^\s*{re.escape(sender)}\s+{re.escape(chat)}\s+{re.escape(position)}\s*$", re.IGNORECASE
    )


def test_the_inbox_plays_three_unplayed_notes_from_two_chats_in_order(
    make_person: Callable[..., Person], make_api_user: Callable[[str], User]
) -> None:
    """In Chromium: three unplayed notes from two chats play oldest first, each is marked played,
    and the sender sees "Played". The long silence inside the second is skipped."""
    alice = make_person("Alice", PHONE)
    alice.context.add_init_script(MEDIA_LOG)
    bob = make_person("Bob", DESKTOP)
    carol = make_api_user("Carol")
    direct = bob.api.direct_with(alice.api)
    family = carol.group("Family", alice.api, bob.api)
    notes = [
        (bob.api, send_voice_note(bob.api, direct, 1.5)),
        (carol, send_voice_with_a_pause(carol, family)),
        (bob.api, send_voice_note(bob.api, direct, 1.5)),
    ]
    bob.open_chat(direct, "Alice")
    expect(bob.items()).to_have_count(2)

    alice.open_chat_list()
    alice.press(button(alice.chat_list, "Play all unplayed"))
    inbox = role(alice.page, "region", "Voice inbox")
    line = inbox.get_by_role("status")
    expect(line).to_have_text(now_playing("Bob", "Direct chat", "1 of 3"))
    expect(line).to_have_text(now_playing("Carol", "Family", "2 of 3"))
    # The longer one: paused there for a picture, the lock screen's metadata and axe.
    alice.press(button(inbox, "Pause"))
    expect(button(inbox, "Play")).to_be_visible()
    expect(line).to_have_text(now_playing("Carol", "Family", "2 of 3"))
    session = alice.page.evaluate(
        "() => ({title: navigator.mediaSession.metadata?.title,"
        " artist: navigator.mediaSession.metadata?.artist})"
    )
    assert session == {"title": "Carol", "artist": "Family"}, session
    for name in ("Previous voice message", "Next voice message", "Stop", "Playback speed"):
        expect(button(inbox, name)).to_be_visible()
    shoot(alice.page, "voice-inbox")
    check_a11y(alice.page, "the voice inbox, paused")
    alice.press(button(inbox, "Play"))
    # From the end of the first 4 s, past the 5 s of silence, to (nearly) the last second.
    alice.page.wait_for_function("() => window.__e2eMedia.seeks.some(t => t > 8 && t < 9.5)")
    expect(line).to_have_text(now_playing("Bob", "Direct chat", "3 of 3"))
    expect(line).to_contain_text("All caught up")

    handle = alice.api.handle
    eventually(lambda: ok(alice.api.http.get("/inbox"))["messages"] == [], what="GET /inbox empty")
    for sender, note in notes:
        played = ok(sender.http.get(f"/messages/{note['id']}"))["receipts"]["played"]
        assert handle in played, (note["id"], played)
    # Bob's open chat shows both his notes played, live.
    for n in range(2):
        expect(status_icon(bob.items().nth(n), "Played")).to_be_visible()

    # Nothing is left: the inbox says so.
    alice.press(button(inbox, "Close voice inbox"))
    expect(inbox).to_have_count(0)
    alice.press(button(alice.chat_list, "Play all unplayed"))
    expect(line).to_have_text(re.compile("No unplayed voice messages", re.I))


def ready_transcript(user: User, message_id: str) -> dict[str, Any] | None:
    transcript = ok(user.http.get(f"/messages/{message_id}"))["transcript"]
    assert transcript is not None and transcript["state"] in ("pending", "ready"), transcript
    return transcript if transcript["state"] == "ready" else None


def spoken_key_word(transcript: dict[str, Any], reference: str) -> dict[str, Any]:
    """A word of the reference text the recognizer got (≥ 5 letters), as late in the clip as
    possible, so that "plays from the match" is told apart from "plays from the start"."""
    said = set(reference.split())
    heard = [w for w in transcript["words"] if len(w["w"]) >= 5 and w["w"].lower() in said]
    assert heard, f"no word of {reference!r} in {transcript}"
    return max(heard, key=lambda w: w["start_ms"])


def test_show_transcript_then_search_plays_the_note_from_the_spoken_word(
    make_person: Callable[..., Person],
    make_api_user: Callable[[str], User],
    browser: Browser,
    tmp_path: Path,
) -> None:
    alice = make_person("Alice", PHONE)
    alice.context.add_init_script(MEDIA_LOG)
    bob = make_api_user("Bob")
    ok(bob.http.patch("/me", json={"transcribe": True}))
    chat_id = bob.direct_with(alice.api)
    clip = LIBRIVOX / "0870.flac"
    uid = upload(bob.http, clip.read_bytes(), filename=clip.name, kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    note = ok(bob.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    # Alice has the chat open while the server transcribes: the transcript comes to her page
    # with the message.updated event.
    alice.open_chat(chat_id, "Bob")
    transcript = eventually(
        lambda: ready_transcript(bob, note["id"]), timeout=60, what="a ready transcript"
    )
    assert transcript is not None
    word = spoken_key_word(transcript, clip.with_suffix(".txt").read_text())
    spoken = word["w"].lower()

    item = alice.items().first
    alice.press(button(item, "Show transcript"))
    text = role(item, "region", "Transcript")
    expect(text).to_contain_text(spoken, ignore_case=True)
    shoot(alice.page, "transcript", sizes=(alice.size,))
    check_a11y(alice.page, "a voice message with its transcript shown")

    alice.press(button(alice.page, "Back to chats"))
    search = role(alice.page, "search").get_by_role("searchbox", name="Search messages")
    search.fill(spoken)
    results = role(alice.page, "list", "Search results")
    hit = results.get_by_role("link").filter(has_text=re.compile(re.escape(spoken), re.I))
    expect(hit).to_have_count(1)
    expect(hit.locator("mark").filter(has_text=re.compile(spoken, re.I)).first).to_be_visible()
    shoot(alice.page, "search-results")
    check_a11y(alice.page, "search results")

    [found] = [
        r
        for r in ok(alice.api.http.get("/search", params={"q": spoken}))["results"]
        if r["message_id"] == note["id"]
    ]
    offset = found["offset_ms"] / 1000
    assert offset > 0.5, found  # a late word: playing from it is not playing from the start

    alice.press(hit)
    alice.wait_for_chat("Bob")
    expect(alice.items().first).to_be_in_viewport()
    started = alice.page.wait_for_function(
        "() => window.__e2eMedia.starts.length > 0 && {at: window.__e2eMedia.starts.at(-1)}"
    ).json_value()["at"]
    assert started >= offset - 0.05, (started, found)

    # Escape clears the search: the chat list is back.
    alice.press(button(alice.page, "Back to chats"))
    search.press("Escape")
    expect(search).to_have_value("")
    expect(results).to_have_count(0)
    expect(alice.chat_link("Bob")).to_be_visible()

    # The chat's export shows the transcript too, offline, under its voice note.
    with exported_chat_offline(browser, alice.api, chat_id, tmp_path / "export") as page:
        page.get_by_text("Transcript", exact=True).click()
        expect(page.get_by_text(transcript["text"])).to_be_visible()
