"""A message's actions: forward to the self chat, star, download as MP3, delete for everyone."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from e2e.support import close_to, decoded_seconds, encode_audio, wav_samples
from e2e.ui import button, first_visible, role, shoot
from support.api import client_id, ok
from support.audio import chunks
from support.tus import record

MP3 = re.compile(r"\bmp3\b", re.IGNORECASE)
DELETE = re.compile(r"^\s*delete( for everyone)?\s*$", re.IGNORECASE)


def test_actions(alice, bob, speech) -> None:
    chat_id = alice.api.direct_with(bob.api)
    self_chat_id = alice.api.self_chat()["id"]

    # Alice's voice message of 3 s, recorded elsewhere (over the API, as Chromium records).
    webm = encode_audio(wav_samples(speech.path, 0, 3.0), "webm", "libopus")
    upload_id = record(
        alice.api.http,
        chunks(webm, 3),
        chat_id=chat_id,
        kind="voice",
        content_type="audio/webm;codecs=opus",
    )
    body = {"client_id": client_id(), "kind": "voice", "upload_id": upload_id}
    ok(alice.api.http.post(f"/chats/{chat_id}/messages", json=body), 201)

    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")
    expect(alice.items()).to_have_count(1)
    mine = alice.items().first
    page = alice.page

    # Forward it to "Message yourself".
    menu = alice.message_actions(mine)
    shoot(page, "message-actions", sizes=(alice.size,))
    alice.press(role(menu, "menuitem", "Forward"))
    forward = role(page, "dialog", "Forward to")
    expect(forward).to_be_visible()
    role(forward, "checkbox", "Message yourself").check()
    shoot(page, "forward-to")
    alice.press(button(forward, "Forward"))
    expect(forward).to_be_hidden()

    # Star it: the menu then offers "Unstar", also after a reload.
    alice.press(role(alice.message_actions(mine), "menuitem", "Star"))
    expect(menu).to_be_hidden()
    menu = alice.message_actions(mine)
    expect(role(menu, "menuitem", "Unstar")).to_be_visible()
    alice.press(role(page, "heading", "Bob"))  # a tap outside closes the menu
    expect(menu).to_be_hidden()
    page.reload()
    alice.wait_for_chat("Bob")
    menu = alice.message_actions(alice.items().first)
    expect(role(menu, "menuitem", "Unstar")).to_be_visible()

    # Download it as MP3.
    with page.expect_download() as download:
        alice.press(role(menu, "menuitem", "Download"))
        mp3_choice = (
            page.get_by_role("menuitem", name=MP3)
            .or_(page.get_by_role("menuitemradio", name=MP3))
            .or_(page.get_by_role("button", name=MP3))
            .or_(page.get_by_role("link", name=MP3))
        )
        alice.press(mp3_choice.first)
    saved = download.value
    assert saved.suggested_filename.lower().endswith(".mp3"), saved.suggested_filename
    fmt, seconds = decoded_seconds(Path(saved.path()).read_bytes())
    assert fmt == "mp3", f"the download is {fmt}, not MP3"
    assert close_to(seconds, 3.0, 0.3), f"the MP3 lasts {seconds:.2f} s, the message 3 s"

    # Delete it for everyone (confirming if the app asks): gone for Bob too.
    mine = alice.items().first
    alice.press(role(alice.message_actions(mine), "menuitem", "Delete for everyone"))
    asking = page.get_by_role("alertdialog").or_(page.get_by_role("dialog"))
    confirm = asking.get_by_role("button", name=DELETE)
    asked = first_visible(
        lambda: alice.items().count() == 0,
        lambda: confirm.count() > 0,
        what="the message deleted, or a confirmation",
    )
    if asked == 1:
        alice.press(confirm.first)
    expect(alice.items()).to_have_count(0)
    expect(bob.items()).to_have_count(0)
    expect(bob.messages).to_contain_text(re.compile("deleted", re.IGNORECASE))
    shoot(bob.page, "deleted-for-everyone")

    # The forwarded copy stays in her self chat, marked as forwarded.
    alice.open_chat(self_chat_id, "Message yourself")
    expect(alice.items()).to_have_count(1)
    expect(alice.items().first).to_contain_text(re.compile("forwarded", re.IGNORECASE))
    shoot(page, "forwarded")
