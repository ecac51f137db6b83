"""Live updates across a dropped connection, unread badges, and starting the app offline."""

from __future__ import annotations

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from e2e.support import PHONE, named, unique_text
from e2e.ui import check_a11y, service_worker_ready, settle, shoot


def test_reconnect(alice, bob) -> None:
    chat_id = alice.api.direct_with(bob.api)
    bob.open_chat(chat_id, "Alice")
    alice.open_chat(chat_id, "Bob")

    # Bob's network drops; the app says so.
    bob.context.set_offline(True)
    expect(bob.offline_status).to_be_visible()
    shoot(bob.page, "offline-bob")

    # Alice sends three messages meanwhile.
    texts = [unique_text(f"{n} while you were away") for n in ("First", "Second", "Third")]
    for text in texts:
        alice.send_text(text)
    shoot(alice.page, "sent-while-bob-away")

    # Back online, Bob has each of them exactly once.
    bob.context.set_offline(False)
    expect(bob.offline_status).to_have_count(0)
    for text in texts:
        expect(bob.text_items(text)).to_have_count(1)
    settle(alice, bob, chat_id)
    for text in texts:
        expect(bob.text_items(text)).to_have_count(1)
    shoot(bob.page, "reconnected")


def test_offline_start(make_person, make_api_user) -> None:
    alice = make_person("Alice", PHONE, login="ui")
    bob = make_api_user("Bob")
    chat_id = bob.direct_with(alice.api)
    first, second = unique_text("Are you there?"), unique_text("Call me when you can")
    bob.send(chat_id, first)

    # Her chat list, live: a second message makes the unread badge 2.
    alice.open_chat_list()
    expect(alice.chat_link("Bob")).to_be_visible()
    bob.send(chat_id, second)
    badge = alice.chat_list.get_by_label(named("2 unread messages")).or_(
        alice.chat_list.get_by_text(named("2 unread messages"))
    )
    expect(badge.first).to_be_visible()
    check_a11y(alice.page, "the chat list with an unread chat")
    shoot(alice.page, "chat-list-unread")

    # She reads the chat once, online; the service worker is in place.
    alice.press(alice.chat_link("Bob"))
    alice.wait_for_chat("Bob")
    expect(alice.text_items(second)).to_have_count(1)
    assert service_worker_ready(alice.page), "no service worker became ready within 10 s"

    # Offline, the app still opens, on the chat and on the list, and says it is offline.
    alice.context.set_offline(True)
    try:
        alice.page.reload()
    except PlaywrightError as e:
        raise AssertionError(f"the app does not open offline: {e}") from e
    expect(alice.text_items(first)).to_have_count(1)
    expect(alice.text_items(second)).to_have_count(1)
    expect(alice.offline_status).to_be_visible()
    shoot(alice.page, "offline-chat")
    try:
        alice.goto("/")
    except PlaywrightError as e:
        raise AssertionError(f"the chat list does not open offline: {e}") from e
    expect(alice.chat_list).to_be_visible()
    expect(alice.chat_link("Bob")).to_be_visible()
    expect(alice.offline_status).to_be_visible()
    shoot(alice.page, "offline-start")
