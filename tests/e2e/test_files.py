"""Sending audio that already exists: the attach button, and sharing in from another app."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from e2e.support import (
    DESKTOP,
    PHONE,
    SHARE_FORM,
    VOICE_OR_AUDIO,
    assert_readable,
    containing,
    encode_audio,
    tiny_png,
    wav_samples,
)
from e2e.ui import (
    alerts,
    button,
    check_a11y,
    field,
    role,
    settle,
    shoot,
    wait_for_position,
)


def test_attach(alice, bob, speech, tmp_path: Path) -> None:
    chat_id = alice.api.direct_with(bob.api)
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(encode_audio(wav_samples(speech.path, 0, 4.0), "ipod", "aac"))
    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")

    # "Attach audio" opens the picker; the sheet shows the file's name and length.
    with alice.page.expect_file_chooser() as chooser:
        alice.press(button(alice.page, "Attach audio"))
    chooser.value.set_files(memo)
    sheet = role(alice.page, "dialog", "Send audio")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("memo.m4a")
    expect(sheet).to_contain_text("0:04")
    check_a11y(alice.page, "the Send audio dialog")
    shoot(alice.page, "send-audio")
    alice.press(button(sheet, "Send"))
    expect(sheet).to_be_hidden()
    expect(alice.items("Audio message")).to_have_count(1)

    # Bob gets it and plays it.
    expect(bob.items("Audio message")).to_have_count(1)
    group = role(bob.items("Audio message").first, "group", "Audio message")
    expect(group).to_contain_text("0:04")
    bob.press(button(group, "Play"))
    expect(button(group, "Pause")).to_be_visible()
    wait_for_position(role(group, "slider", "Seek"), 1.0)
    shoot(bob.page, "audio-received")

    # A PNG named .mp3 is refused with a reason in words (by the app, or when the server
    # refuses it after "Send").
    field(alice.page, "Audio file").set_input_files(
        files=[{"name": "picture.mp3", "mimeType": "audio/mpeg", "buffer": tiny_png()}]
    )
    refused = alerts(alice.page).first
    send = button(role(alice.page, "dialog", "Send audio"), "Send")
    expect(refused.or_(send).first).to_be_visible()
    if not refused.is_visible():
        alice.press(send)
    expect(refused).to_be_visible()
    reason = refused.inner_text()
    assert_readable(reason, about="the refused file's alert")
    assert "audio" in reason.lower(), f"the alert does not say the file is not audio: {reason!r}"
    shoot(alice.page, "audio-refused")

    # Nothing more reached Bob.
    settle(alice, bob, chat_id)
    expect(bob.items(VOICE_OR_AUDIO)).to_have_count(1)


def test_share(make_person, speech, tmp_path: Path) -> None:
    alice = make_person("Alice", DESKTOP)
    bob = make_person("Bob", PHONE)
    chat_id = alice.api.direct_with(bob.api)
    self_chat_id = alice.api.self_chat()["id"]
    note = tmp_path / "voice-note.opus"
    note.write_bytes(encode_audio(wav_samples(speech.path, 0, 3.0), "ogg", "libopus"))
    bob.open_chat(chat_id, "Alice")
    alice.open_chat_list()  # one visit: the app (and its service worker) is there

    # Another app's page, on the same origin, posts the file to /share.
    alice.goto("/healthz")
    alice.page.set_content(SHARE_FORM)
    alice.page.get_by_label("Audio to share").set_input_files(note)
    alice.page.get_by_role("button", name="Share to voxbox").click()

    # "Send to…": the file, a checkbox per chat; she picks two.
    page = alice.page
    expect(role(page, "heading", "Send to…")).to_be_visible()
    expect(page.get_by_text(containing("voice-note.opus")).first).to_be_visible()
    role(page, "checkbox", "Message yourself").check()
    role(page, "checkbox", "Bob").check()
    check_a11y(page, "the Send to… page")
    shoot(page, "share-send-to")
    alice.press(button(page, "Send"))

    # Two chats picked: the chat list opens, and both chats have it.
    expect(alice.chat_list).to_be_visible()
    expect(bob.items(VOICE_OR_AUDIO)).to_have_count(1)
    shoot(bob.page, "share-received")
    alice.open_chat(self_chat_id, "Message yourself")
    expect(alice.items(VOICE_OR_AUDIO)).to_have_count(1)
