"""Export a chat as a zip, streamed: never built whole in memory or on disk.

The zip holds, for the messages the caller can see:

- ``chat.txt``: WhatsApp's line format (``[2026-11-25, 14:03:12] Alice: <attached: NAME>``), so
  the tools that read WhatsApp exports read it too;
- ``messages.json``: every message with sender, time, kind, reply and forward info, duration,
  waveform and, for a voice or audio message, its transcript as the API shows it (``state``,
  ``text``, ``language``, timed ``words``, ``error``);
- ``media/``: the voice notes (Ogg/Opus) and audio files, named as WhatsApp names attachments;
- ``chat.html``: the conversation as bubbles, playing every voice note from ``media/`` in a
  browser, offline, with no server; a transcript opens under its voice note.

Messages are read a page at a time, once per part, and media bytes are copied a chunk at a
time from the blob store into the zip, so memory stays flat whatever the chat's size. Times are
in UTC.
"""

from __future__ import annotations

import html
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from voxbox.core.access import access_chat, visible_to
from voxbox.core.backends import Backends
from voxbox.core.errors import blobs_must_exist
from voxbox.core.mediatypes import safe_filename
from voxbox.core.principal import Principal
from voxbox.core.views import TRANSCRIPT_OFF, load_chat, transcript_out
from voxbox.db.models import Media, Member, Message, Transcript, User
from voxbox.timeutil import isoformat

PAGE = 500  # messages read per query


@dataclass(frozen=True)
class ChatExport:
    """A chat's export: its file name and its bytes, produced as they are read."""

    filename: str
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class ExportItem:
    """One message as the export shows it."""

    number: int  # 1-based position in the export: the prefix of its attachment's name
    message: Message
    handle: str
    name: str
    media: Media | None
    transcript: Transcript | None = None  # its media's, when one was requested

    @property
    def attachment(self) -> str | None:
        """The file name of its media in ``media/``, or None when it has none to export."""
        media, message = self.media, self.message
        if media is None or message.deleted_at is not None or message.view_once:
            return None
        if media.state != "ready" or media.ogg_key is None:
            return None
        kind = "VOICE" if media.kind == "voice" else "AUDIO"
        stamp = message.created_at.strftime("%Y-%m-%d-%H-%M-%S")
        return f"{self.number:08d}-{kind}-{stamp}.{self.extension}"

    @property
    def extension(self) -> str:
        media = self.media
        assert media is not None
        if media.kind == "voice" or media.original_key is None:
            return "opus"
        suffix = media.filename.rsplit(".", 1)[-1].lower() if "." in media.filename else ""
        return suffix if suffix.isalnum() and len(suffix) <= 8 else "bin"

    @property
    def blob_key(self) -> str | None:
        media = self.media
        if media is None:
            return None
        return media.ogg_key if media.kind == "voice" else media.original_key or media.ogg_key


async def open_export(
    b: Backends, user: Principal, chat_id: str, *, media: bool = True
) -> ChatExport:
    """The export of a chat the user is (or was) a member of; NotFound for anyone else, before
    a byte is sent."""
    async with b.read() as session:
        chat, member = await access_chat(session, user.id, chat_id)
        view = await load_chat(session, user.id, chat)
    others = [m.display_name for m in view.members if m.handle != user.handle]
    title = view.title or (", ".join(others) if others else user.display_name)
    stem = safe_filename(f"voxbox {title}", "voxbox chat")
    return ChatExport(f"{stem}.zip", _zip(b, user, member, title, media=media))


async def message_items(b: Backends, member: Member) -> AsyncIterator[ExportItem]:
    """The messages the member can see, oldest first, a page per query."""
    after, number = "", 0
    while True:
        async with b.read() as session:
            rows = (
                await session.execute(
                    select(Message, User.handle, User.display_name, Media, Transcript)
                    .join(User, User.id == Message.sender_id)
                    .outerjoin(Media, Media.id == Message.media_id)
                    .outerjoin(Transcript, Transcript.media_id == Message.media_id)
                    .where(*visible_to(member), Message.id > after)
                    .order_by(Message.id)
                    .limit(PAGE)
                )
            ).all()
        for message, handle, name, media, transcript in rows:
            number += 1
            name = message.sender_name or name
            yield ExportItem(number, message, handle, name, media, transcript)
        if len(rows) < PAGE:
            return
        after = rows[-1][0].id


class ZipSink:
    """A write-only stream for ``zipfile`` (which then writes without seeking); what was
    written is taken out with ``drain``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


async def _zip(
    b: Backends, user: Principal, member: Member, title: str, *, media: bool
) -> AsyncIterator[bytes]:
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(zip_entry("chat.txt", zipfile.ZIP_DEFLATED), "w", force_zip64=True) as out:
            async for item in message_items(b, member):
                out.write(_chat_line(item, media=media).encode())
                yield sink.drain()
        yield sink.drain()

        entry = zip_entry("messages.json", zipfile.ZIP_DEFLATED)
        with zf.open(entry, "w", force_zip64=True) as out:
            out.write(b"[")
            first = True
            async for item in message_items(b, member):
                record = json.dumps(_record(item, media=media), ensure_ascii=False)
                out.write(("\n  " if first else ",\n  ").encode() + record.encode())
                first = False
                yield sink.drain()
            out.write(b"\n]\n")
        yield sink.drain()

        if media:
            async for item in message_items(b, member):
                name, key = item.attachment, item.blob_key
                if name is None or key is None:
                    continue
                info = zip_entry(f"media/{name}", zipfile.ZIP_STORED)  # audio is compressed already
                with zf.open(info, "w", force_zip64=True) as out, blobs_must_exist():
                    async with await b.store.open(key) as stream:
                        async for chunk in stream:
                            out.write(chunk)
                            yield sink.drain()

        with zf.open(zip_entry("chat.html", zipfile.ZIP_DEFLATED), "w", force_zip64=True) as out:
            out.write(_html_head(title, user.handle).encode())
            async for item in message_items(b, member):
                record = json.dumps(_record(item, media=media), ensure_ascii=False)
                out.write(record.replace("</", "<\\/").encode() + b",\n")
                yield sink.drain()
            out.write(_HTML_TAIL.encode())
    yield sink.drain()  # the central directory


def zip_entry(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
    info.compress_type = compression
    return info


def _stamp(at: datetime) -> str:
    return at.strftime("[%Y-%m-%d, %H:%M:%S]")


def _chat_line(item: ExportItem, *, media: bool) -> str:
    message = item.message
    if message.deleted_at is not None:
        body = "This message was deleted"
    elif message.kind == "text":
        body = message.text or ""
    elif message.view_once:
        body = "<view once voice message omitted>"
    elif not media or item.attachment is None:
        body = "<Media omitted>"
    else:
        body = f"<attached: {item.attachment}>"
    return f"{_stamp(message.created_at)} {item.name}: {body}\n"


def _record(item: ExportItem, *, media: bool) -> dict[str, Any]:
    message, found = item.message, item.media
    deleted = message.deleted_at is not None
    return {
        "id": message.id,
        # Kept from elsewhere, by someone who is not a user here: no handle, only a name.
        "sender": item.handle if message.sender_name is None else None,
        "sender_name": item.name,
        "imported": message.imported,
        "time": isoformat(message.created_at),
        "kind": message.kind,
        "text": None if deleted else message.text,
        "reply_to": message.reply_to_id,
        "forwarded": message.forwarded_from_id is not None,
        "view_once": message.view_once,
        "deleted": deleted,
        "duration_ms": found.duration_ms if found is not None and not deleted else None,
        "waveform": json.loads(found.waveform)
        if found is not None and found.waveform and not deleted
        else None,
        "file": f"media/{item.attachment}" if media and item.attachment else None,
        "original_filename": found.filename if found is not None and not deleted else None,
        "transcript": _transcript(item),
    }


def _transcript(item: ExportItem) -> dict[str, Any] | None:
    """What the API shows as the message's ``transcript``: nothing for a text or a deleted
    message, ``off`` for a view-once one (never transcribed), else its media's."""
    message = item.message
    if message.kind == "text" or message.deleted_at is not None:
        return None
    shown = TRANSCRIPT_OFF if message.view_once else transcript_out(item.transcript)
    return shown.model_dump(mode="json")


def _html_head(title: str, me: str) -> str:
    safe = html.escape(title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe} — voxbox export</title>
<style>
body{{margin:0;font:15px/1.4 system-ui,sans-serif;background:#ece5dd;color:#111}}
header{{position:sticky;top:0;background:#075e54;color:#fff;padding:12px 16px;font-size:18px}}
main{{max-width:760px;margin:0 auto;padding:12px;display:flex;flex-direction:column;gap:6px}}
.msg{{max-width:80%;padding:6px 10px;border-radius:8px;background:#fff;align-self:flex-start;
box-shadow:0 1px 1px rgba(0,0,0,.15)}}
.msg.mine{{align-self:flex-end;background:#dcf8c6}}
.who{{font-weight:600;font-size:13px;color:#075e54}}
.when{{font-size:11px;color:#555;text-align:right}}
.gone{{font-style:italic;color:#555}}
audio{{display:block;max-width:100%;margin:4px 0}}
details{{margin:2px 0 4px;font-size:14px}}
summary{{cursor:pointer;color:#075e54}}
details p{{margin:4px 0 0;white-space:pre-wrap}}
</style></head>
<body><header>{safe}</header><main id="chat" aria-label="Messages"></main>
<script>const ME = {json.dumps(me)};
const MESSAGES = [
"""


_HTML_TAIL = """];
const chat = document.getElementById("chat");
for (const m of MESSAGES) {
  const box = document.createElement("article");
  box.className = m.sender === ME ? "msg mine" : "msg";
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = m.sender_name;
  box.append(who);
  if (m.deleted) {
    const p = document.createElement("p");
    p.className = "gone";
    p.textContent = "This message was deleted";
    box.append(p);
  } else if (m.kind === "text") {
    const p = document.createElement("p");
    p.style.whiteSpace = "pre-wrap";
    p.textContent = m.text;
    box.append(p);
  } else if (m.file) {
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "metadata";
    audio.src = m.file;
    audio.setAttribute("aria-label",
      (m.kind === "voice" ? "Voice message from " : "Audio from ") + m.sender_name);
    box.append(audio);
  } else {
    const p = document.createElement("p");
    p.className = "gone";
    p.textContent = m.view_once ? "View once voice message" : "Media omitted";
    box.append(p);
  }
  const said = m.transcript && m.transcript.state === "ready" ? m.transcript.text : "";
  if (said) {
    const details = document.createElement("details");
    details.className = "transcript";
    const summary = document.createElement("summary");
    summary.textContent = "Transcript";
    const p = document.createElement("p");
    if (m.transcript.language) p.lang = m.transcript.language;
    p.textContent = said;
    details.append(summary, p);
    box.append(details);
  }
  const when = document.createElement("div");
  when.className = "when";
  const seconds = m.duration_ms ? " · " + Math.round(m.duration_ms / 1000) + " s" : "";
  when.textContent = new Date(m.time).toLocaleString() + seconds;
  box.append(when);
  chat.append(box);
}
</script></body></html>
"""
