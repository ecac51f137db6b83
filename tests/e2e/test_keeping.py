"""Keeping voice messages: an exported chat plays in a browser with no server and no network."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, expect

from e2e.ui import SCREENSHOT_DIR, Person, button, role, shoot
from support.api import User, client_id, ok
from support.audio import encode
from support.tus import upload


def test_an_exported_chat_plays_its_voice_note_offline(
    browser: Browser, make_api_user: Callable[[str], User], tmp_path: Path
) -> None:
    alice, bob = make_api_user("Alice"), make_api_user("Bob")
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "listen to this")
    uid = upload(bob.http, encode(2.0, "ogg", "libopus"), kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    ok(bob.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    r = alice.http.get(f"/chats/{chat_id}/export", params={"media": "true"})
    assert r.status_code == 200, r.text
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path / "export")

    context = browser.new_context(offline=True, locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto((tmp_path / "export" / "chat.html").as_uri())
        expect(page.get_by_text("listen to this")).to_be_visible()
        note = page.get_by_label("Voice message from Bob")
        expect(note).to_be_visible()
        note.evaluate("audio => audio.play()")  # rejects if the file cannot be played
        page.wait_for_function(
            "audio => audio.currentTime > 0.5", arg=note.element_handle(), timeout=10_000
        )
        assert note.evaluate("audio => audio.error") is None
        assert abs(note.evaluate("audio => audio.duration") - 2.0) < 0.1
        page.screenshot(path=str(SCREENSHOT_DIR / "export-chat-html.png"))
    finally:
        context.close()


def test_export_chat_from_the_chat_menu_downloads_the_zip(
    alice: Person, bob: Person, tmp_path: Path
) -> None:
    chat_id = alice.api.direct_with(bob.api)
    bob.api.send(chat_id, "the address is 12 Elm Street")
    bob.open_chat(chat_id, "Alice")

    bob.press(button(bob.page, "Chat menu"))
    menu = role(bob.page, "menu", "Chat menu")
    expect(menu).to_be_visible()
    shoot(bob.page, "chat-menu", sizes=(bob.size,))
    with bob.page.expect_download() as download:
        bob.press(menu.get_by_role("menuitem", name="Export chat"))
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)

    assert saved.name.endswith(".zip") and "Alice" in saved.name
    with zipfile.ZipFile(saved) as zf:
        assert "Bob: the address is 12 Elm Street" in zf.read("chat.txt").decode()
    expect(menu).to_be_hidden()
    expect(button(bob.page, "Chat menu")).to_be_focused()
