"""A real SMTP server for the tests (aiosmtpd, on a free port), keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from support.server import free_port


@dataclass
class Mailbox:
    """What the server received; ``wait(n)`` blocks until ``n`` mails are in."""

    host: str
    port: int
    mails: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: str | None = None  # answer every mail with this SMTP reply instead (e.g. "451 ...")
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse is not None:
            return self.refuse
        content: Any = envelope.content
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        with self._arrived:
            self.mails.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[list[str], EmailMessage]]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.mails) >= count, timeout), self.mails
            return list(self.mails)

    def settings(self) -> dict[str, str | None]:
        """The VOXBOX_* settings of a voxbox that mails through this server (make_server
        takes them as keywords too)."""
        return {
            "VOXBOX_SMTP__HOST": self.host,
            "VOXBOX_SMTP__PORT": str(self.port),
            "VOXBOX_SMTP__SECURITY": "none",
            "VOXBOX_SMTP__FROM": "voxbox@example.org",
        }


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox("127.0.0.1", free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
