"""Groups, a refused microphone, sending while offline, playback that goes on by itself (the next
unplayed message, the mini-player) and view-once voice notes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from e2e.support import PHONE, encode_audio, named, unique_text, wav_samples
from e2e.ui import Person, alerts, button, check_a11y, field, role, shoot
from support.api import client_id, ok
from support.audio import chunks
from support.tus import record


def send_voice(sender: Person, chat_id: str, speech_path, seconds: float, **extra: object) -> dict:
    """A voice message recorded elsewhere (over the API, as Chromium records)."""
    webm = encode_audio(wav_samples(speech_path, 0, seconds), "webm", "libopus")
    upload_id = record(
        sender.api.http,
        chunks(webm, max(1, int(seconds))),
        chat_id=chat_id,
        kind="voice",
        content_type="audio/webm;codecs=opus",
    )
    body = {"client_id": client_id(), "kind": "voice", "upload_id": upload_id, **extra}
    return ok(sender.api.http.post(f"/chats/{chat_id}/messages", json=body), 201)


def test_group_create_add_remove_leave(make_person) -> None:
    alice = make_person("Alice", PHONE)
    bob = make_person("Bob")
    carol = make_person("Carol")
    page = alice.page
    alice.open_chat_list()

    alice.press(button(alice.chat_list, "New group"))
    dialog = role(page, "dialog", "New group")
    field(dialog, "Group name").fill("Family")
    field(dialog, "Members").fill(bob.api.handle)
    alice.press(button(dialog, "Create group"))
    alice.wait_for_chat("Family")
    alice.send_text("Hello family")

    bob.open_chat_list()
    expect(bob.chat_link("Family")).to_be_visible()

    alice.press(button(page, "Group info"))
    info = role(page, "dialog", "Group info")
    field(info, "Handle").fill(carol.api.handle)
    alice.press(button(info, "Add member"))
    expect(info).to_contain_text("Carol")
    carol.open_chat_list()
    expect(carol.chat_link("Family")).to_be_visible()
    shoot(page, "group-info", sizes=(alice.size,))

    carol_row = info.get_by_role("listitem").filter(has_text="Carol")
    alice.press(button(carol_row, "Remove"))
    expect(info).not_to_contain_text("Carol")

    alice.press(button(info, "Leave group"))
    expect(page.get_by_text(re.compile("no longer a member", re.I))).to_be_visible()
    expect(alice.composer).to_have_count(0)


def test_a_refused_microphone_is_named(make_person) -> None:
    alice = make_person("Alice")
    # The browser says no, as when the person blocks the site's microphone.
    alice.context.add_init_script(
        "navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    chat_id = alice.api.self_chat()["id"]
    alice.open_chat(chat_id, "Message yourself")
    alice.press(alice.record_button)
    alert = alerts(alice.page).filter(has_text=re.compile("microphone", re.I))
    expect(alert).to_be_visible()
    expect(alice.record_button).to_be_enabled()
    assert alice.open_uploads() == []
    shoot(alice.page, "microphone-refused")


def test_a_message_sent_offline_goes_once_when_back(alice, bob) -> None:
    chat_id = alice.api.direct_with(bob.api)
    alice.open_chat(chat_id, "Bob")
    bob.open_chat(chat_id, "Alice")

    alice.context.set_offline(True)
    expect(alice.offline_status).to_be_visible()
    text = unique_text("Written on the train")
    alice.send_text(text)
    mine = alice.text_items(text)
    expect(mine).to_have_count(1)  # shown at once
    expect(mine.get_by_role("img", name=named("Sending"))).to_be_visible()
    expect(bob.text_items(text)).to_have_count(0)

    alice.context.set_offline(False)
    expect(bob.text_items(text)).to_have_count(1)
    expect(mine.get_by_role("img", name=re.compile("^(Sent|Delivered|Read)$"))).to_be_visible()
    alice.page.reload()
    expect(alice.text_items(text)).to_have_count(1)
    bob.page.reload()
    expect(bob.text_items(text)).to_have_count(1)


def test_the_next_unplayed_plays_by_itself_and_goes_on_elsewhere(alice, bob, speech) -> None:
    chat_id = bob.api.direct_with(alice.api)
    send_voice(bob, chat_id, speech.path, 2.0)
    send_voice(bob, chat_id, speech.path, 8.0)
    alice.open_chat(chat_id, "Bob")
    first, second = alice.items().nth(0), alice.items().nth(1)
    alice.press(button(first, "Play"))
    expect(button(first, "Pause")).to_be_visible()
    # The first ends; the second starts by itself.
    expect(button(second, "Pause")).to_be_visible(timeout=15_000)

    # Playback goes on in the mini-player while Alice looks at another chat (within the app:
    # no page load).
    if alice.size.touch:
        alice.press(button(alice.page, "Back to chats"))
    alice.press(alice.chat_link("Message yourself"))
    alice.wait_for_chat("Message yourself")
    mini = role(alice.page, "region", "Now playing")
    expect(mini).to_be_visible()
    shoot(alice.page, "mini-player", sizes=(alice.size,))
    alice.press(button(mini, "Close player"))
    expect(mini).to_have_count(0)


def test_a_view_once_voice_note_plays_once(alice, bob, speech) -> None:
    chat_id = bob.api.direct_with(alice.api)
    send_voice(bob, chat_id, speech.path, 2.0, view_once=True)
    alice.open_chat(chat_id, "Bob")
    voice = alice.items().first
    expect(voice).to_contain_text(re.compile("view once", re.I))
    alice.press(button(voice, "Play"))
    expect(button(voice, "Pause")).to_be_visible()
    bob.open_chat(chat_id, "Alice")
    expect(bob.messages.get_by_role("img", name=named("Played"))).to_be_visible()
    # Once heard, it is gone: after a reload it shows as opened, with nothing to play.
    alice.page.reload()
    item = alice.messages.get_by_role("listitem").first
    expect(item).to_contain_text(re.compile("opened", re.I))
    expect(item.get_by_role("group", name=named("Voice message"))).to_have_count(0)
    check_a11y(alice.page, "a chat with an opened view-once message")
