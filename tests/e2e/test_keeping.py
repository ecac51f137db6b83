"""Keeping voice messages: an exported chat plays in a browser with no server and no network."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from e2e.ui import SCREENSHOT_DIR, Person, button, check_a11y, exported_chat_offline, role, shoot
from support.api import User, client_id, ok
from support.audio import encode
from support.factory import ServerFactory
from support.server import ServerProcess
from support.smtp import Mailbox, smtp_server
from support.tus import upload


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def app_server(server_factory: ServerFactory, mailbox: Mailbox) -> ServerProcess:
    """This module's server also mails, through the test's SMTP server."""
    return server_factory.start(mailbox.settings())


def test_an_exported_chat_plays_its_voice_note_offline(
    browser: Browser, make_api_user: Callable[[str], User], tmp_path: Path
) -> None:
    alice, bob = make_api_user("Alice"), make_api_user("Bob")
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "listen to this")
    uid = upload(bob.http, encode(2.0, "ogg", "libopus"), kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    ok(bob.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    with exported_chat_offline(browser, alice, chat_id, tmp_path / "export") as page:
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
    check_a11y(bob.page, "the open chat menu")
    with bob.page.expect_download() as download:
        bob.press(menu.get_by_role("menuitem", name="Export chat"))
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)

    assert saved.name.endswith(".zip") and "Alice" in saved.name
    with zipfile.ZipFile(saved) as zf:
        assert "Bob: the address is 12 Elm Street" in zf.read("chat.txt").decode()
    expect(menu).to_be_hidden()
    expect(button(bob.page, "Chat menu")).to_be_focused()


def test_email_a_voice_message_from_its_actions(
    alice: Person, bob: Person, mailbox: Mailbox
) -> None:
    chat_id = alice.api.direct_with(bob.api)
    uid = upload(alice.api.http, encode(1.5, "ogg", "libopus"), kind="voice", chat_id=chat_id)
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    ok(alice.api.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    bob.open_chat(chat_id, "Alice")

    menu = bob.message_actions(bob.items("Voice message").last)
    bob.press(menu.get_by_role("menuitem", name="Email"))
    dialog = role(bob.page, "dialog", "Email voice message")
    expect(dialog).to_be_visible()
    dialog.get_by_label("To").fill("grandma@example.org")
    dialog.get_by_label("Note").fill("Alice's first words")
    shoot(bob.page, "email-voice-message", sizes=(bob.size,))
    check_a11y(bob.page, "the Email voice message dialog")
    bob.press(button(dialog, "Send email"))

    expect(dialog).to_be_hidden()
    [(recipients, mail)] = mailbox.wait(1)
    assert recipients == ["grandma@example.org"]
    assert "Alice's first words" in mail.get_body(("plain",)).get_content()
    assert {p.get_content_type() for p in mail.iter_attachments()} == {"audio/ogg", "audio/mpeg"}


def test_back_up_now_then_restore_from_backup_in_settings(
    make_person: Callable[..., Person], make_api_user: Callable[[str], User], tmp_path: Path
) -> None:
    alice, bob = make_person("Alice"), make_api_user("Bob")
    chat_id = alice.api.direct_with(bob)
    bob.send(chat_id, "keep this one forever")
    alice.goto("/settings")
    # What she keeps here, against the server's quota (GET /me): nothing yet.
    expect(alice.page.get_by_text("Storage:")).to_have_text(
        "Storage: 0 bytes of 10 GB used · 0 unsent uploads (at most 20)"
    )

    alice.press(button(alice.page, "Back up now"))
    dialog = role(alice.page, "dialog", "Back up now")
    dialog.get_by_label("Passphrase", exact=True).fill("a long passphrase")
    dialog.get_by_label("Repeat passphrase").fill("a long passphrase")
    check_a11y(alice.page, "the Back up now dialog")
    alice.press(button(dialog, "Start backup"))
    done = alice.page.get_by_role("status").filter(has_text="Backup ready")
    expect(done).to_contain_text("1 message in 2 chats")
    with alice.page.expect_download() as download:
        alice.press(done.get_by_role("link", name="Download backup"))
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".age" and saved.read_bytes().startswith(b"age-encryption.org/v1")

    carol = make_person("Carol")
    carol.goto("/settings")
    carol.press(button(carol.page, "Restore from backup"))
    dialog = role(carol.page, "dialog", "Restore from backup")
    dialog.get_by_label("Backup file").set_input_files(saved)
    dialog.get_by_label("Passphrase").fill("not it at all")
    carol.press(button(dialog, "Restore"))
    expect(dialog.get_by_role("alert")).to_contain_text("Wrong passphrase")
    dialog.get_by_label("Passphrase").fill("a long passphrase")
    carol.press(button(dialog, "Restore"))
    expect(carol.page.get_by_role("status")).to_contain_text("Restored 1 message in 1 chat")
    shoot(carol.page, "restore-from-backup", sizes=(carol.size,))
    check_a11y(carol.page, "Settings after a restore")

    carol.goto("/")
    carol.press(carol.chat_link("Bob"))
    expect(carol.text_items("keep this one forever")).to_be_visible()
    expect(carol.text_items("keep this one forever")).to_contain_text("Bob")


def test_import_chat_from_settings_brings_a_whatsapp_chat_in(
    make_person: Callable[..., Person], tmp_path: Path
) -> None:
    sam = make_person("Sam")
    export = tmp_path / "WhatsApp Chat with Mum.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr(
            "WhatsApp Chat with Mum.txt",
            "25/11/2026, 14:03 - Mum: Hello love\n"
            "25/11/2026, 14:05 - Sam: Hi Mum\n"
            "25/11/2026, 14:06 - Mum: PTT-20261125-WA0003.opus (file attached)\n",
        )
        zf.writestr("PTT-20261125-WA0003.opus", encode(2.0, "ogg", "libopus"))
    sam.goto("/settings")

    sam.press(button(sam.page, "Import chat"))
    dialog = role(sam.page, "dialog", "Import chat")
    dialog.get_by_label("Exported chat").set_input_files(export)
    dialog.get_by_label("Time zone").fill("Europe/London")
    dialog.get_by_label("Your name in the chat").fill("Sam")
    check_a11y(sam.page, "the Import chat dialog")
    sam.press(button(dialog, "Import"))
    done = sam.page.get_by_role("status")
    expect(done).to_contain_text("Imported 3 messages")
    shoot(sam.page, "import-chat", sizes=(sam.size,))

    sam.press(button(done, "Open the chat"))
    expect(role(sam.page, "heading", "Mum")).to_be_visible()
    expect(sam.text_items("Hello love")).to_contain_text("Mum")
    expect(sam.items("Voice message")).to_have_count(1)
