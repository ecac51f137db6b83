"""Importing a chat exported from WhatsApp or Telegram into the user's own kept chat.

The request reads and parses the chat file at once, so an export in a format we cannot read is a
422 that quotes its first bad line. A job then takes the voice notes and audio files through the
same pipeline as uploads (waveform, duration, Ogg/Opus) and writes the chat in one transaction
(``core.history``): the messages in their original order, at their original times in the given
zone, each sender mapped to a user here where the user said so and kept by name otherwise.

Each message's key is made from what the export says of it (time, sender, text, attachment, and
which of several identical lines it is), so importing the same file again, or a later export of
the same chat, adds only what is new.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from voxbox.core import history, media
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid, VoxboxError
from voxbox.core.importing import archive, formats
from voxbox.core.principal import Principal
from voxbox.core.tasks import Progress, TaskOut, get_task, run_task, start_task, task_out
from voxbox.core.usage import check_incoming
from voxbox.db.models import User

VOICE_SUFFIXES = {".opus", ".ogg", ".oga"}
AUDIO_SUFFIXES = {".m4a", ".mp3", ".aac", ".wav", ".flac", ".amr", ".3gp", ".webm", ".wma"}
MAX_SKIPPED_REPORTED = 1000


@dataclass(frozen=True)
class _Plan:
    origin: history.Origin
    title: str
    parsed: formats.Parsed
    senders: dict[str, str]  # a name in the export -> a user id here


async def start_import(
    b: Backends,
    user: Principal,
    path: Path,
    upload_name: str,
    *,
    timezone: str = "UTC",
    mapping: str | None = None,
) -> TaskOut:
    """Read the export at ``path`` (which this takes over) now; import it in a job."""
    found: archive.Archive | None = None

    async def release() -> None:
        if found is not None and found.zf is not None:
            found.zf.close()
        await asyncio.to_thread(path.unlink, missing_ok=True)

    try:
        zone = _zone(timezone)
        await check_incoming(b, user.id, path)
        senders = await _resolve(b, _mapping(mapping))
        found = await asyncio.to_thread(archive.open_export, path, upload_name, b.settings.imports)
        plan = await asyncio.to_thread(_plan, found, zone, senders)
        task = await start_task(b, user, "import")
    except BaseException:
        await release()  # also when refused after the archive was opened (a 409, a 422)
        raise
    opened = found

    async def work(progress: Progress) -> dict[str, Any]:
        try:
            return await _import(b, user, opened, plan, task.id, progress)
        finally:
            await release()

    run_task(b, task.id, work)
    return task_out(task)


async def import_status(b: Backends, user: Principal, task_id: str) -> TaskOut:
    return task_out(await get_task(b, user, "import", task_id))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"Unknown time zone {name!r}: give an IANA name like Europe/London."
        ) from None


def _mapping(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid('mapping must be a JSON object of names to handles: {"Mum": "mum"}.')
    return {k.strip(): v.strip().lstrip("@").lower() for k, v in value.items()}


async def _resolve(b: Backends, names: dict[str, str]) -> dict[str, str]:
    if not names:
        return {}
    async with b.read() as session:
        rows = await session.execute(
            select(User.handle, User.id).where(User.handle.in_(set(names.values())))
        )
        ids: dict[str, str] = dict(rows.tuples().all())
    missing = sorted({h for h in names.values() if h not in ids})
    if missing:
        raise Invalid(f"No user {missing[0]!r} on this server (mapping).")
    return {name: ids[handle] for name, handle in names.items()}


def _plan(found: archive.Archive, zone: ZoneInfo, senders: dict[str, str]) -> _Plan:
    try:
        if found.kind == "telegram":
            parsed = formats.parse_telegram(found.chat, zone)
            origin: history.Origin = "telegram"
            title = parsed.title or "Telegram chat"
        else:
            text = found.chat.decode("utf-8", errors="replace")
            parsed = formats.parse_whatsapp(text, zone)
            origin = "whatsapp"
            title = archive.whatsapp_title(found.name)
    except formats.UnknownFormat as exc:
        raise Invalid(f"This chat export is in a format voxbox cannot read: {exc}.") from None
    if not parsed.entries:
        raise Invalid("The export holds no messages.")
    return _Plan(origin, title, parsed, senders)


def _keys(chat_key: str, entries: list[formats.Entry]) -> list[str]:
    """A stable key per entry: its chat, what the export says of it, and which of identical
    ones it is (the chat's key keeps the same line in two chats apart)."""
    seen: Counter[tuple[str, ...]] = Counter()
    keys = []
    for e in entries:
        what = (e.at.isoformat(), e.sender or "", e.text or "", e.attachment or "")
        seen[what] += 1
        digest = hashlib.sha256("\0".join((chat_key, *what, str(seen[what]))).encode()).hexdigest()
        keys.append(digest[:40])
    return keys


async def _import(
    b: Backends,
    user: Principal,
    found: archive.Archive,
    plan: _Plan,
    task_id: str,
    progress: Progress,
) -> dict[str, Any]:
    entries = plan.parsed.entries
    first = entries[0]
    chat_key = history.chat_key(
        user.id, plan.origin, f"{plan.title}\0{first.at.isoformat()}\0{first.sender}"
    )
    known = await history.kept_keys(b, plan.origin, chat_key)
    skipped: list[dict[str, Any]] = [
        {"line": s.line, "reason": s.reason} for s in plan.parsed.skipped
    ]
    counts = {"messages": 0, "already_there": 0, "voice_notes": 0, "audio_files": 0}
    work = b.spool_dir / f"import-{task_id.lower()}"
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    messages: list[history.KeptMessage] = []
    try:
        for n, (entry, key) in enumerate(zip(entries, _keys(chat_key, entries), strict=True)):
            if key in known:
                counts["already_there"] += 1
                continue
            try:
                message = await _message(b, user, found, plan, entry, key, work)
            except _Skip as exc:
                skipped.append({"line": entry.line, "reason": str(exc)})
                continue
            if message.media is not None:
                counts["voice_notes" if message.kind == "voice" else "audio_files"] += 1
            messages.append(message)
            if n % 200 == 199 or message.media is not None:
                await progress(0.9 * (n + 1) / len(entries))
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    kept = await history.keep_chat(b, user, plan.origin, chat_key, plan.title, messages)
    counts["messages"] = kept.added
    counts["already_there"] += kept.already_there
    skipped.sort(key=lambda s: s["line"])
    return {
        "chat_id": kept.chat_id,
        "counts": counts | {"skipped": len(skipped)},
        "skipped": skipped[:MAX_SKIPPED_REPORTED],
    }


class _Skip(Exception):
    """This entry is left out; the reason goes in the report."""


async def _message(
    b: Backends,
    user: Principal,
    found: archive.Archive,
    plan: _Plan,
    entry: formats.Entry,
    key: str,
    work: Path,
) -> history.KeptMessage:
    sender = entry.sender or ""
    sender_id = plan.senders.get(sender)
    who: dict[str, Any] = (
        {"sender_id": None if sender_id == user.id else sender_id}
        if sender_id is not None
        else {"sender_name": sender[:128] or "Unknown"}
    )
    text = entry.text
    limit = b.settings.limits.max_text_chars
    if entry.attachment is None or entry.media_omitted:
        body = (
            text if not entry.media_omitted else "\n".join(filter(None, ["<Media omitted>", text]))
        )
        return history.KeptMessage(key, entry.at, "text", text=(body or "")[:limit], **who)
    name = entry.attachment
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in VOICE_SUFFIXES | AUDIO_SUFFIXES:
        body = "\n".join(filter(None, [f"<attached: {PurePosixPath(name).name}>", text]))
        return history.KeptMessage(key, entry.at, "text", text=body[:limit], **who)
    kind: media.MediaKind = "voice" if suffix in VOICE_SUFFIXES else "audio"
    dest = work / f"{key}{suffix}"
    try:
        await asyncio.to_thread(found.extract, name, dest)
        made = await media.ingest_file(b, user, kind, dest, PurePosixPath(name).name)
    except archive.Unreadable as exc:
        raise _Skip(str(exc)) from None
    except VoxboxError as exc:
        raise _Skip(f"{PurePosixPath(name).name}: {exc.detail}") from None
    finally:
        await asyncio.to_thread(dest.unlink, missing_ok=True)
    # Heard in the other app, most likely: not a pile of unplayed notes in this one.
    played = entry.at if "sender_id" not in who or who["sender_id"] is not None else None
    return history.KeptMessage(key, entry.at, kind, media=made, played_at=played, **who)
