"""Forward a voice or audio message by email, through the SMTP server in the settings.

The mail carries the audio as it plays in voxbox (a voice note's Ogg/Opus, an audio file as it
was uploaded) plus an MP3 copy for mail clients that cannot play Opus, and says in its body who
sent it, when, how long it is, and the forwarder's note. It is sent before the request is
answered: an SMTP failure is the caller's error response (502), never silently dropped.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

import aiosmtplib

from voxbox.core.access import access_message
from voxbox.core.backends import Backends
from voxbox.core.errors import (
    Invalid,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    VoxboxError,
)
from voxbox.core.media.serving import Content, media_content, open_content
from voxbox.core.principal import Principal
from voxbox.db.models import Media, User

MAX_NOTE = 2000
# One address, no display name: local@domain with a dot in the domain (RFC 5322 is far wider,
# but this is what a person types into "To").
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\]+")


class MailFailed(VoxboxError):
    status, code, title = 502, "mail_failed", "Mail server error"


def check_address(to: str) -> str:
    name, address = parseaddr(to.strip())
    if name or not _ADDRESS.fullmatch(address) or address != to.strip():
        raise Invalid(f"{to!r} is not an email address (like name@example.org).")
    return address


async def email_message(
    b: Backends, user: Principal, message_id: str, to: str, note: str | None = None
) -> str:
    """Email the audio of a message the user can see to ``to``; returns the address."""
    smtp = b.settings.smtp
    if not smtp.host or not smtp.sender:
        raise Unavailable(
            "Email is off on this server: its admin has not set VOXBOX_SMTP__HOST and "
            "VOXBOX_SMTP__FROM."
        )
    address = check_address(to)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise Invalid(f"A note has at most {MAX_NOTE} characters.")
    async with b.read() as session:
        message, _, _ = await access_message(session, user.id, message_id)
        if message.kind not in ("voice", "audio") or message.media_id is None:
            raise Invalid("Only voice and audio messages can be emailed.")
        if message.deleted_at is not None:
            raise Invalid("This message was deleted.")
        if message.view_once:
            raise Invalid("A view-once voice message cannot be emailed.")
        media = await session.get_one(Media, message.media_id)
        sender = await session.get_one(User, message.sender_id)
    limits = b.settings.limits
    count, retry = await b.limiter.hit(f"email:{user.id}", 3600)
    if count > limits.emails_per_hour:
        raise RateLimited(f"At most {limits.emails_per_hour} emails an hour.", retry)
    audio = await media_content(b, user, media.id, "original")
    if audio.size > limits.email_max_bytes:
        raise PayloadTooLarge(
            f"This audio is {audio.size:,} bytes; emails carry at most "
            f"{limits.email_max_bytes:,}. Download it instead."
        )
    mp3 = (
        None
        if audio.content_type == "audio/mpeg"
        else await media_content(b, user, media.id, "mp3")
    )

    mail = EmailMessage()
    mail["From"] = formataddr((f"{user.display_name} via voxbox", smtp.sender))
    mail["To"] = address
    what = "voice message" if message.kind == "voice" else "audio"
    when = message.created_at.strftime("%Y-%m-%d %H:%M UTC")
    mail["Subject"] = f"A {what} from {sender.display_name} ({when})"
    seconds = round((media.duration_ms or 0) / 1000)
    lines = [
        f"{user.display_name} (@{user.handle}) forwards you a {what}.",
        "",
        f"From: {sender.display_name} (@{sender.handle})",
        f"Sent: {when}",
        f"Length: {seconds // 60}:{seconds % 60:02d}",
    ]
    if note:
        lines += ["", "Note:", note]
    lines += ["", "The audio is attached (and as MP3, for players without Opus)." if mp3 else ""]
    mail.set_content("\n".join(lines).rstrip() + "\n")
    for content in (audio, mp3):
        if content is not None:
            await _attach(b, mail, content)
    try:
        await aiosmtplib.send(
            mail,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise Invalid(f"The mail server refused {address}: {exc}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"The mail server did not take the email: {exc}") from exc
    return address


async def _attach(b: Backends, mail: EmailMessage, content: Content) -> None:
    stream = await open_content(b, content, None)
    assert stream is not None  # the whole file: never past its end
    async with stream:
        data = b"".join([chunk async for chunk in stream])
    maintype, _, subtype = content.content_type.split(";")[0].partition("/")
    mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=content.filename)
