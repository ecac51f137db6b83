"""Forwarding a voice message by email through a real SMTP server (aiosmtpd), read back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.api import assert_problem, ok
from support.audio import decoded_duration
from support.cli import login, voxbox
from support.smtp import Mailbox, smtp_server
from support.tus import send_voice_note


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def mail_server(make_server, mailbox):
    mailbox.mails.clear()
    mailbox.refuse = None
    return make_server(limits__emails_per_hour="3", **mailbox.settings())


def test_a_voice_message_arrives_by_email_with_opus_mp3_and_the_note(
    mail_server, mailbox, make_user
) -> None:
    alice = make_user(server=mail_server, display_name="Alice")
    bob = make_user(server=mail_server, display_name="Bob")
    chat_id = alice.direct_with(bob)
    voice = send_voice_note(bob, chat_id, 2.0)

    r = alice.http.post(
        f"/messages/{voice['id']}/email", json={"to": "grandma@example.org", "note": "Listen!"}
    )

    assert ok(r, 202) == {"to": "grandma@example.org"}
    [(recipients, mail)] = mailbox.wait(1)
    assert recipients == ["grandma@example.org"]
    assert "Bob" in mail["Subject"] and "voxbox@example.org" in mail["From"]
    body = mail.get_body(("plain",)).get_content()
    assert "From: Bob (@" in body and "Length: 0:02" in body and "Listen!" in body
    parts = {p.get_content_type(): p.get_content() for p in mail.iter_attachments()}
    assert set(parts) == {"audio/ogg", "audio/mpeg"}
    assert abs(decoded_duration(parts["audio/ogg"]) - 2.0) < 0.1
    assert abs(decoded_duration(parts["audio/mpeg"]) - 2.0) < 0.2


def test_bad_requests_are_refused_and_send_nothing(mail_server, mailbox, make_user) -> None:
    alice, bob = make_user(server=mail_server), make_user(server=mail_server)
    chat_id = alice.direct_with(bob)
    voice = send_voice_note(bob, chat_id, 1.0)
    text = alice.send(chat_id, "just text")
    url = f"/messages/{voice['id']}/email"

    assert_problem(alice.http.post(url, json={"to": "not an address"}), 422, "invalid")
    assert_problem(alice.http.post(url, json={"to": "a@b.org, c@d.org"}), 422, "invalid")
    email_text = alice.http.post(f"/messages/{text['id']}/email", json={"to": "x@example.org"})
    assert_problem(email_text, 422, "invalid")
    stranger = make_user(server=mail_server)
    assert_problem(stranger.http.post(url, json={"to": "x@example.org"}), 404, "not_found")
    assert mailbox.mails == []


def test_emails_are_rate_limited_per_user(mail_server, mailbox, make_user) -> None:
    alice, bob = make_user(server=mail_server), make_user(server=mail_server)
    voice = send_voice_note(bob, alice.direct_with(bob), 1.0)
    url = f"/messages/{voice['id']}/email"
    for _ in range(3):
        ok(alice.http.post(url, json={"to": "x@example.org"}), 202)

    r = alice.http.post(url, json={"to": "x@example.org"})

    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0
    assert len(mailbox.wait(3)) == 3


def test_a_mail_server_failure_is_reported(mail_server, mailbox, make_user) -> None:
    alice, bob = make_user(server=mail_server), make_user(server=mail_server)
    voice = send_voice_note(bob, alice.direct_with(bob), 1.0)
    mailbox.refuse = "451 Try again later"

    r = alice.http.post(f"/messages/{voice['id']}/email", json={"to": "x@example.org"})

    problem = assert_problem(r, 502, "mail_failed")
    assert "451" in problem["detail"]


def test_without_a_mail_server_email_is_off(make_user) -> None:
    alice, bob = make_user(), make_user()
    voice = send_voice_note(bob, alice.direct_with(bob), 1.0)

    r = alice.http.post(f"/messages/{voice['id']}/email", json={"to": "x@example.org"})

    problem = assert_problem(r, 503, "unavailable")
    assert "VOXBOX_SMTP__HOST" in problem["detail"]


def test_voxbox_email_sends_it(mail_server, mailbox, make_user, tmp_path) -> None:
    alice, bob = make_user(server=mail_server), make_user(server=mail_server)
    voice = send_voice_note(bob, alice.direct_with(bob), 1.0)
    config = login(mail_server, alice, tmp_path / "alice")

    result = voxbox(config, "email", voice["id"], "--to", "me@example.org", "--note", "keep")

    assert result.returncode == 0, result.stderr
    assert "Emailed to me@example.org." in result.stderr
    [(recipients, mail)] = mailbox.wait(1)
    assert recipients == ["me@example.org"] and "keep" in mail.get_body(("plain",)).get_content()
    refused = voxbox(config, "email", voice["id"], "--to", "nobody")
    assert refused.returncode != 0 and "not an email address" in refused.stderr
