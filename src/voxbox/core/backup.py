"""A user's backup: one age-encrypted file of everything they have, and its restore.

The file is an age file (passphrase, scrypt), so ``age -d`` opens it without voxbox. Inside is a
zip:

- ``backup.json``: the format, the user, and their chats with members;
- ``messages.jsonl``: one message per line, chat after chat, oldest first, each with its sender,
  time, text, reply, media, the user's star and everyone's receipts;
- ``media/``: the voice notes (Ogg/Opus) and audio files, named by their content hash.

Making one streams: messages a page at a time, media a chunk at a time, encrypted as written.
Restoring decrypts the whole file first, so a wrong passphrase, a truncated or an altered file
is refused before anything changes. The chats then come back as the user's kept chats (see
``core.history``): others' messages by their senders' names, the user's own as the user's, into
an account on this or another server. Restoring again adds nothing. A chat the user is still a
member of here is left as it is. View-once and deleted messages are not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, select

from voxbox import age
from voxbox.core import history
from voxbox.core.backends import Backends
from voxbox.core.disk import check_disk
from voxbox.core.errors import BytesMissing, Invalid, blobs_must_exist
from voxbox.core.export import ExportItem, message_items, zip_entry
from voxbox.core.principal import Principal
from voxbox.core.tasks import Progress, TaskOut, get_task, run_task, start_task, task_out
from voxbox.core.usage import check_incoming
from voxbox.core.views import load_chats
from voxbox.db.models import Chat, Media, Member, Receipt, Star, Task, User
from voxbox.ids import new_id
from voxbox.storage import blob_key
from voxbox.storage.base import BlobStream
from voxbox.timeutil import isoformat, utcnow

FORMAT = "voxbox-backup"
VERSION = 1
_MEDIA_NAME = re.compile(r"media/([0-9a-f]{64})(\.ogg)?")


MIN_PASSPHRASE = 8


def _check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise Invalid(f"Choose a passphrase of at least {MIN_PASSPHRASE} characters.")
    return passphrase


# Making a backup


async def start_backup(b: Backends, user: Principal, passphrase: str) -> TaskOut:
    key = age.Passphrase(_check_passphrase(passphrase), b.settings.backup.work_factor)
    check_disk(b)
    task = await start_task(b, user, "backup")

    async def work(progress: Progress) -> dict[str, Any]:
        return await _make(b, user, key, task.id, progress)

    run_task(b, task.id, work)
    return task_out(task)


class _AgeWriter:
    """A write-only file object for ``zipfile``: encrypts what is written into ``out``."""

    def __init__(self, out: IO[bytes], key: age.Passphrase) -> None:
        self._out, self._age = out, age.Encryptor(key)

    def write(self, data: bytes) -> int:
        self._out.write(self._age.update(bytes(data)))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Write the last chunk (which marks the end: without it the file reads as cut off)."""
        self._out.write(self._age.finish())


async def _make(
    b: Backends, user: Principal, key: age.Passphrase, task_id: str, progress: Progress
) -> dict[str, Any]:
    path = b.spool_dir / f"backup-{task_id}.age"
    try:
        counts = await _write(b, user, key, path, progress)
        size = path.stat().st_size
        stored = f"backups/{user.id.lower()}/{task_id.lower()}.age"
        await b.store.put_file(stored, path, move=True)
    finally:
        path.unlink(missing_ok=True)
    return {"counts": counts, "size": size, "blob_key": stored}


async def _write(
    b: Backends, user: Principal, key: age.Passphrase, path: Path, progress: Progress
) -> dict[str, int]:
    async with b.read() as session:
        members = list(await session.scalars(select(Member).where(Member.user_id == user.id)))
        chats = {
            c.id: c
            for c in await session.scalars(
                select(Chat).where(Chat.id.in_([m.chat_id for m in members]))
            )
        }
        views = await load_chats(session, user.id, list(chats.values()))
    counts = {"chats": len(members), "messages": 0, "media": 0}
    media_keys: dict[str, str] = {}  # blob key -> its name in the zip
    with path.open("wb") as out:
        sink = _AgeWriter(out, key)
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": isoformat(utcnow()),
                "user": {"handle": user.handle, "display_name": user.display_name},
                "chats": [
                    {
                        "id": view.id,
                        "kind": view.kind,
                        "title": view.title,
                        "members": [m.model_dump() for m in view.members],
                        "left": next(m for m in members if m.chat_id == view.id).left_id
                        is not None,
                    }
                    for view in views
                ],
            }
            zf.writestr(
                zip_entry("backup.json", zipfile.ZIP_DEFLATED), json.dumps(manifest, indent=1)
            )
            entry = zip_entry("messages.jsonl", zipfile.ZIP_DEFLATED)
            with zf.open(entry, "w", force_zip64=True) as lines:
                for done, member in enumerate(members):
                    async for page in _pages(message_items(b, member)):
                        for record in await _records(b, user, page, media_keys):
                            lines.write(json.dumps(record).encode() + b"\n")
                            counts["messages"] += 1
                    await progress(0.5 * (done + 1) / max(len(members), 1))
            for done, (blob, name) in enumerate(media_keys.items()):
                info = zip_entry(name, zipfile.ZIP_STORED)  # audio is compressed already
                with zf.open(info, "w", force_zip64=True) as media, blobs_must_exist():
                    stream: BlobStream = await b.store.open(blob)
                    async with stream:
                        async for chunk in stream:
                            media.write(chunk)
                counts["media"] += 1
                if done % 20 == 19:
                    await progress(0.5 + 0.5 * done / len(media_keys))
        sink.close()  # the last chunk: zipfile does not close a file object it was given
    return counts


async def _pages(
    items: AsyncIterator[ExportItem], size: int = 500
) -> AsyncIterator[list[ExportItem]]:
    page: list[ExportItem] = []
    async for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


async def _records(
    b: Backends, user: Principal, items: list[ExportItem], media_keys: dict[str, str]
) -> list[dict[str, Any]]:
    kept = [i for i in items if i.message.deleted_at is None and not i.message.view_once]
    ids = [i.message.id for i in kept]
    async with b.read() as session:
        starred = set(
            await session.scalars(
                select(Star.message_id).where(Star.user_id == user.id, Star.message_id.in_(ids))
            )
        )
        receipts: dict[str, list[dict[str, Any]]] = {}
        rows = await session.execute(
            select(Receipt, User.handle)
            .join(User, User.id == Receipt.user_id)
            .where(Receipt.message_id.in_(ids))
        )
        for receipt, handle in rows.tuples():
            receipts.setdefault(receipt.message_id, []).append(
                {
                    "handle": handle,
                    "delivered_at": _time(receipt.delivered_at),
                    "read_at": _time(receipt.read_at),
                    "played_at": _time(receipt.played_at),
                }
            )
    records = []
    for item in kept:
        message, media = item.message, item.media
        records.append(
            {
                "id": message.id,
                "chat_id": message.chat_id,
                "sender": item.handle,
                "sender_name": item.name,
                "mine": item.handle == user.handle and message.sender_name is None,
                "kind": message.kind,
                "text": message.text,
                "created_at": isoformat(message.created_at),
                "reply_to": message.reply_to_id,
                "forwarded": message.forwarded_from_id is not None,
                "imported": message.imported,
                "starred": message.id in starred,
                "receipts": receipts.get(message.id, []),
                "media": _media_record(media, media_keys) if media is not None else None,
            }
        )
    return records


def _media_record(media: Media, media_keys: dict[str, str]) -> dict[str, Any] | None:
    if media.state != "ready" or media.ogg_key is None:
        return None
    ogg = media_keys.setdefault(media.ogg_key, f"media/{_sha(media.ogg_key)}.ogg")
    original = None
    if media.original_key is not None:
        original = media_keys.setdefault(media.original_key, f"media/{_sha(media.original_key)}")
    return {
        "kind": media.kind,
        "filename": media.filename,
        "content_type": media.source_content_type,
        "source_sha256": media.source_sha256,
        "source_size": media.source_size,
        "duration_ms": media.duration_ms,
        "waveform": json.loads(media.waveform) if media.waveform else None,
        "ogg": ogg,
        "ogg_size": media.ogg_size,
        "original": original,
    }


def _sha(key: str) -> str:
    """The sha256 a content-addressed blob key is made of (``ab/cd/<sha256>[suffix]``)."""
    return key.rsplit("/", 1)[-1][:64]


def _time(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


async def backup_status(b: Backends, user: Principal, task_id: str) -> TaskOut:
    return task_out(await get_task(b, user, "backup", task_id))


@dataclass(frozen=True)
class BackupFile:
    filename: str
    size: int
    stream: BlobStream


async def open_backup(b: Backends, user: Principal, task_id: str) -> BackupFile:
    task = await get_task(b, user, "backup", task_id)
    if task.state != "ready" or task.blob_key is None:
        raise BytesMissing(
            "This backup is not ready." if task.state == "running" else "This backup failed."
        )
    with blobs_must_exist():
        stream = await b.store.open(task.blob_key)
    stamp = task.created_at.strftime("%Y-%m-%d")
    return BackupFile(f"voxbox-backup-{user.handle}-{stamp}.age", stream.size, stream)


async def expire_backups(b: Backends) -> int:
    """Delete backups made more than ``backup.keep_hours`` ago, file and task; how many."""
    cutoff = utcnow() - timedelta(hours=b.settings.backup.keep_hours)
    async with b.read() as session:
        expired = list(
            await session.scalars(
                select(Task).where(Task.kind == "backup", Task.created_at < cutoff)
            )
        )
    for task in expired:
        if task.blob_key is not None:
            await b.store.delete(task.blob_key)
    async with b.transaction() as session:
        await session.execute(delete(Task).where(Task.id.in_([t.id for t in expired])))
    return len(expired)


# Restoring one


async def start_restore(b: Backends, user: Principal, path: Path, passphrase: str) -> TaskOut:
    """Restore the backup at ``path`` (which this takes over). The passphrase is checked now:
    a wrong one is a 422 at once; damage is found as the file is read, and fails the task."""
    key = age.Passphrase(passphrase, max_work_factor=b.settings.backup.max_work_factor)
    try:
        await check_incoming(b, user.id, path)
        await asyncio.to_thread(_check_header, path, key)
        task = await start_task(b, user, "restore")
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise

    async def work(progress: Progress) -> dict[str, Any]:
        try:
            return await _restore(b, user, path, key, progress)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    run_task(b, task.id, work)
    return task_out(task)


async def restore_status(b: Backends, user: Principal, task_id: str) -> TaskOut:
    return task_out(await get_task(b, user, "restore", task_id))


def _check_header(path: Path, key: age.Passphrase) -> None:
    decryptor = age.Decryptor(key)
    try:
        with path.open("rb") as f:
            decryptor.update(f.read(4096))
    except age.WrongKey:
        raise Invalid(
            "Wrong passphrase: this is not the passphrase the backup was made with."
        ) from None
    except age.AgeError:
        raise Invalid("This is not a voxbox backup (an age-encrypted file).") from None


def _decrypt(path: Path, key: age.Passphrase, out: Path) -> None:
    decryptor = age.Decryptor(key)
    try:
        with path.open("rb") as src, out.open("wb") as dst:
            while chunk := src.read(1024 * 1024):
                dst.write(decryptor.update(chunk))
            dst.write(decryptor.finish())
    except age.AgeError as exc:
        raise Invalid(
            f"The backup is damaged or incomplete ({exc}); nothing was restored."
        ) from None


async def _restore(
    b: Backends, user: Principal, path: Path, key: age.Passphrase, progress: Progress
) -> dict[str, Any]:
    work = b.spool_dir / f"restore-{new_id()}"
    work.mkdir(parents=True)
    try:
        plain = work / "backup.zip"
        await asyncio.to_thread(_decrypt, path, key, plain)
        await progress(0.2)
        with _open_zip(plain) as zf:
            manifest = _manifest(zf)
            return await _apply(b, user, zf, manifest, progress)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise Invalid("The backup opens, but what it holds is not a voxbox backup.") from None


def _manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(zf.read("backup.json"))
    except (KeyError, ValueError):
        raise Invalid("The backup opens, but what it holds is not a voxbox backup.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise Invalid("This backup was made by another version of voxbox and cannot be read.")
    return dict(manifest)


def _chat_messages(zf: zipfile.ZipFile) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(chat id, its messages) from messages.jsonl, which holds them chat after chat."""
    chat_id, batch = None, list[dict[str, Any]]()
    with zf.open("messages.jsonl") as lines:
        for line in lines:
            record = json.loads(line)
            if record["chat_id"] != chat_id and batch:
                yield str(chat_id), batch
                batch = []
            chat_id = record["chat_id"]
            batch.append(record)
    if batch:
        yield str(chat_id), batch


async def _apply(
    b: Backends, user: Principal, zf: zipfile.ZipFile, manifest: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    chats = {c["id"]: c for c in manifest["chats"]}
    owner = manifest["user"]["handle"]
    counts = {"chats": 0, "messages": 0, "already_there": 0, "media": 0}
    async with b.read() as session:
        still_here = set(
            await session.scalars(
                select(Member.chat_id).where(
                    Member.user_id == user.id,
                    Member.chat_id.in_(list(chats)),
                    Member.left_id.is_(None),
                )
            )
        )
    counts["chats_still_here"] = len(still_here)
    for done, (chat_id, records) in enumerate(_chat_messages(zf)):
        chat = chats.get(chat_id)
        if chat is None or chat_id in still_here:
            continue
        messages = []
        for record in records:
            media = await _restore_media(b, user, zf, record.get("media"))
            counts["media"] += media is not None
            mine = record["sender"] == owner and record["mine"]
            own_receipt = next((r for r in record["receipts"] if r["handle"] == owner), None)
            messages.append(
                history.KeptMessage(
                    key=record["id"],
                    at=datetime.fromisoformat(record["created_at"]),
                    kind=record["kind"],
                    text=record["text"],
                    media=media,
                    sender_name=None if mine else record["sender_name"],
                    reply_to=record["reply_to"],
                    starred=record["starred"],
                    played_at=datetime.fromisoformat(own_receipt["played_at"])
                    if own_receipt and own_receipt["played_at"]
                    else None,
                )
            )
        kept = await history.keep_chat(
            b, user, "backup", _restored_key(b, user, chat), _title(chat, owner), messages
        )
        counts["chats"] += 1
        counts["messages"] += kept.added
        counts["already_there"] += kept.already_there
        await progress(0.2 + 0.8 * (done + 1) / max(len(chats), 1))
    return {"counts": counts}


def _restored_key(b: Backends, user: Principal, chat: dict[str, Any]) -> str:
    if chat["kind"] == "self":
        return f"self:{user.id}"
    return history.chat_key(user.id, "backup", chat["id"])


def _title(chat: dict[str, Any], owner: str) -> str:
    if chat["title"] and chat["kind"] != "self":
        return str(chat["title"])
    others = [m["display_name"] for m in chat["members"] if m["handle"] != owner]
    return ", ".join(others) or "Restored chat"


async def _restore_media(
    b: Backends, user: Principal, zf: zipfile.ZipFile, record: dict[str, Any] | None
) -> Media | None:
    """An unsaved media row for a message being restored, its blobs stored (once)."""
    if record is None:
        return None
    ogg_key = await _restore_blob(b, zf, record["ogg"], ".ogg")
    original_key = (
        await _restore_blob(b, zf, record["original"], "") if record["original"] else None
    )
    # The source's hash finds twins for later uploads, so it must be one checked here: the
    # original's, or else the rendition's (a voice note's recording is not kept).
    return Media(
        id=new_id(),
        uploader_id=user.id,
        kind=record["kind"],
        state="ready",
        filename=record["filename"],
        source_sha256=_sha(original_key or ogg_key),
        source_size=record["source_size"],
        source_content_type=record["content_type"],
        original_key=original_key,
        ogg_key=ogg_key,
        ogg_size=record["ogg_size"],
        duration_ms=record["duration_ms"],
        waveform=json.dumps(record["waveform"]) if record["waveform"] is not None else None,
        created_at=utcnow(),
    )


async def _restore_blob(b: Backends, zf: zipfile.ZipFile, name: str, suffix: str) -> str:
    """Store a media file of the backup under its content-addressed key, unless it is there;
    its bytes must hash to its name (a crafted backup must not put other bytes under a key)."""
    match = _MEDIA_NAME.fullmatch(name)
    if match is None or (match.group(2) or "") != suffix:
        raise Invalid(f"The backup names a media file it cannot hold: {name!r}.")
    key = blob_key(match.group(1), suffix)
    if await b.store.exists(key):
        return key
    tmp = b.spool_dir / f"restore-blob-{new_id()}"
    try:
        digest = await asyncio.to_thread(_copy_hashing, zf, name, tmp)
        if digest != match.group(1):
            raise Invalid(
                f"The backup's {name} does not hold what its name says; nothing of it was stored."
            )
        await b.store.put_file(key, tmp, move=True)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _copy_hashing(zf: zipfile.ZipFile, name: str, dest: Path) -> str:
    digest = hashlib.sha256()
    try:
        with zf.open(name) as src, dest.open("wb") as out:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
    except KeyError:
        raise Invalid(f"The backup lacks {name}, which a message needs.") from None
    return digest.hexdigest()
