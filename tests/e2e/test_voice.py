"""Recording voice messages with the fake microphone: locked, held, by touch, left unsent."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from e2e.support import (
    DESKTOP,
    PHONE,
    clock_pattern,
    close_to,
    containing,
    eventually,
    first_clock,
    ink_profile,
    named,
    speed,
)
from e2e.ui import (
    Finger,
    Person,
    audio_probe,
    button,
    catch_tick,
    center,
    check_a11y,
    role,
    settle,
    shoot,
    slider_number,
    status_icon,
    wait_for_clock,
    wait_for_sound,
)

RECORDING_AUDIO = containing("recording audio…")
SLIDE_TO_CANCEL = containing("Slide to cancel")


def last_voice_media(person: Person, chat_id: str) -> dict:
    """The media of the newest voice message in the chat, as the server has it."""
    voices = [m for m in person.api.messages(chat_id) if m["kind"] == "voice"]
    assert voices, "no voice message on the server"
    return voices[-1]["media"]


def test_voice_locked(make_person) -> None:
    alice = make_person("Alice", DESKTOP)
    bob = make_person("Bob", PHONE)
    chat_id = alice.api.direct_with(bob.api)
    bob.open_chat(chat_id, "Alice")

    # Alice finds Bob in her chat list and opens the chat.
    alice.open_chat_list()
    expect(alice.chat_link("Bob")).to_be_visible()
    check_a11y(alice.page, "the chat list")
    shoot(alice.page, "chat-list")
    alice.press(alice.chat_link("Bob"))
    alice.wait_for_chat("Bob")

    # A click starts a locked recording; Bob sees that she is recording.
    alice.press(alice.record_button)
    timer = alice.recording_time
    expect(timer).to_be_visible()
    expect(button(alice.page, "Pause recording")).to_be_visible()
    wait_for_clock(timer, 1)
    check_a11y(alice.page, "the recorder (locked, recording)")
    shoot(alice.page, "recorder-locked")
    expect(bob.page.get_by_text(RECORDING_AUDIO).filter(visible=True).first).to_be_visible()

    # Pause at 0:03: the preview and the other controls show, and the clock stops.
    wait_for_clock(timer, 3)
    alice.press(button(alice.page, "Pause recording"))
    expect(button(alice.page, "Resume recording")).to_be_visible()
    paused_at = timer.inner_text()
    expect(button(alice.page, "Play recording")).to_be_visible()
    expect(button(alice.page, "Delete recording")).to_be_visible()
    expect(button(alice.page, "Send recording")).to_be_visible()
    check_a11y(alice.page, "the recorder (locked, paused)")
    shoot(alice.page, "recorder-paused")
    expect(timer).to_have_text(paused_at)

    # Resume up to 0:05, pause again, listen to it, send.
    alice.press(button(alice.page, "Resume recording"))
    expect(button(alice.page, "Pause recording")).to_be_visible()
    tick = catch_tick(timer, 5)
    alice.press(button(alice.page, "Pause recording"))
    recorded = tick.seconds + (time.monotonic() - tick.at)
    expect(timer).to_contain_text("0:05")
    before = audio_probe(alice.page)
    alice.press(button(alice.page, "Play recording"))
    wait_for_sound(alice.page, before)
    alice.press(button(alice.page, "Send recording"))
    expect(timer).to_be_hidden()
    expect(alice.record_button).to_be_visible()
    expect(alice.items()).to_have_count(1)

    # Bob sees it arrive live: duration as recorded, a waveform; "recording audio…" is gone.
    expect(bob.items()).to_have_count(1)
    expect(bob.page.get_by_text(RECORDING_AUDIO).filter(visible=True)).to_have_count(0)
    group = role(bob.items().first, "group", "Voice message")
    media = last_voice_media(bob, chat_id)
    duration = media["duration_ms"] / 1000
    assert close_to(duration, recorded, 0.5), (
        f"Alice recorded {recorded:.2f} s (the timer read 0:05); the message lasts {duration:.2f} s"
    )
    shown = first_clock(group.inner_text())
    assert abs(shown - duration) < 1, f"Bob's bubble shows {shown} s for {duration:.2f} s"
    seek = role(group, "slider", "Seek")
    expect(seek).to_be_visible()
    assert abs(slider_number(seek, "aria-valuemax") - duration) < 1
    waveform = ink_profile(seek.screenshot())
    assert waveform.looks_like_waveform(), f"no waveform drawn in Seek: {waveform.describe()}"
    check_a11y(bob.page, "the chat view with a voice message")
    shoot(bob.page, "voice-received")
    bob.page.emulate_media(color_scheme="dark")
    check_a11y(bob.page, "the chat view with a voice message, dark")
    shoot(bob.page, "voice-received-dark")
    bob.page.emulate_media(color_scheme="light")

    # Her chat list shows the voice message with its duration.
    expect(alice.chat_link("Bob")).to_contain_text(clock_pattern(duration))

    # Bob plays it, and goes from normal speed to 1.5 and 2 times.
    before = audio_probe(bob.page)
    bob.press(button(group, "Play"))
    expect(button(group, "Pause")).to_be_visible()
    speed_button = button(group, "Playback speed")
    expect(speed_button).to_have_text(named(speed(1)))
    bob.press(speed_button)
    expect(speed_button).to_have_text(named(speed(1.5)))
    bob.press(speed_button)
    expect(speed_button).to_have_text(named(speed(2)))
    wait_for_sound(bob.page, before)
    bob.page.wait_for_function("() => window.__e2eAudio.rate === 2")
    shoot(bob.page, "voice-playing")

    # Alice sees that Bob played it.
    expect(status_icon(alice.items().first, "Played")).to_be_visible()
    shoot(alice.page, "voice-played")


def test_voice_hold(make_person) -> None:
    alice = make_person("Alice", DESKTOP)
    bob = make_person("Bob", PHONE)
    chat_id = alice.api.direct_with(bob.api)
    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")
    mouse = alice.page.mouse
    timer = alice.recording_time

    # Hold the mic, release at 0:02: sent.
    x, y = center(alice.record_button)
    mouse.move(x, y)
    mouse.down()
    expect(alice.page.get_by_text(SLIDE_TO_CANCEL).filter(visible=True).first).to_be_visible()
    tick = catch_tick(timer, 2)
    shoot(alice.page, "recorder-hold", sizes=(alice.size,))
    mouse.up()
    recorded = tick.seconds + (time.monotonic() - tick.at)
    expect(timer).to_be_hidden()
    expect(bob.items()).to_have_count(1)
    duration = last_voice_media(bob, chat_id)["duration_ms"] / 1000
    assert close_to(duration, recorded, 0.5), f"held {recorded:.2f} s, got {duration:.2f} s"
    shoot(bob.page, "voice-hold-received")

    # Hold again, slide 150 px left, release: cancelled.
    x, y = center(alice.record_button)
    mouse.move(x, y)
    mouse.down()
    wait_for_clock(timer, 2)
    mouse.move(x - 150, y, steps=15)
    mouse.up()
    expect(timer).to_be_hidden()
    expect(alice.record_button).to_be_visible()

    # Nothing reached Bob, and the draft is gone from the server.
    settle(alice, bob, chat_id)
    expect(bob.items()).to_have_count(1)
    expect(alice.items()).to_have_count(1)
    eventually(lambda: alice.open_uploads() == [], what="Alice's open uploads after cancelling")


def test_voice_touch(alice, bob) -> None:
    """On the phone: hold the mic with a finger, slide up to lock, let go, then send."""
    chat_id = alice.api.direct_with(bob.api)
    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")
    timer = alice.recording_time

    finger = Finger(alice.page)
    finger.down(*center(alice.record_button))
    expect(alice.page.get_by_text(SLIDE_TO_CANCEL).filter(visible=True).first).to_be_visible()
    wait_for_clock(timer, 1)
    finger.slide(0, -120)
    finger.up()

    # Locked: it records on without the finger, with the locked controls.
    expect(button(alice.page, "Pause recording")).to_be_visible()
    wait_for_clock(timer, 2)
    shoot(alice.page, "recorder-locked-touch", sizes=(alice.size,))
    alice.press(button(alice.page, "Send recording"))
    expect(timer).to_be_hidden()
    expect(bob.items()).to_have_count(1)
    duration = last_voice_media(bob, chat_id)["duration_ms"] / 1000
    assert duration >= 2.0, f"a recording past 0:02 came out {duration:.2f} s long"


def test_unsent_recording(make_person) -> None:
    alice = make_person("Alice", DESKTOP)
    bob = make_person("Bob", PHONE)
    chat_id = alice.api.direct_with(bob.api)
    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")

    # Enter on the mic starts a locked recording (the keyboard way).
    alice.record_button.focus()
    alice.page.keyboard.press("Enter")
    wait_for_clock(alice.recording_time, 3)
    eventually(
        lambda: any((u.get("offset") or 0) > 0 for u in alice.open_uploads()),
        what="the recording streaming to the server",
    )

    # She closes the tab mid-recording, and comes back to the chat.
    alice.page.close()
    alice.new_page()
    alice.open_chat(chat_id, "Bob")
    unsent = role(alice.page, "region", "Unsent recording")
    expect(unsent).to_be_visible()
    expect(button(unsent, "Delete unsent recording")).to_be_visible()
    check_a11y(alice.page, "the chat view offering an unsent recording")
    shoot(alice.page, "unsent-recording")
    before = audio_probe(alice.page)
    alice.press(button(unsent, "Play unsent recording"))
    wait_for_sound(alice.page, before)
    alice.press(button(unsent, "Send unsent recording"))
    expect(unsent).to_be_hidden()

    # Bob gets exactly one voice message, and no draft is left.
    expect(bob.items()).to_have_count(1)
    settle(alice, bob, chat_id)
    expect(bob.items()).to_have_count(1)
    expect(alice.items()).to_have_count(1)
    eventually(lambda: alice.open_uploads() == [], what="Alice's open uploads after sending")
