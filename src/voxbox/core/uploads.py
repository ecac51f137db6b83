"""Uploads: tus 1.0.0 (creation, deferred length, termination, expiration) for voice drafts
and audio files.

Each PATCH's bytes become one part blob (``uploads/<id>/<offset>``) and a row in upload_parts,
committed together with the new offset: a PATCH is all there or not at all, on any worker, and a
broken connection keeps what arrived. Finishing assembles the parts (see core/media/ingest.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core import mediatypes
from voxbox.core.access import access_chat, active_member_ids, check_active
from voxbox.core.backends import Backends
from voxbox.core.disk import DISK_CHECK_EVERY, check_disk
from voxbox.core.errors import BadRequest, Conflict, Invalid, NotFound, PayloadTooLarge
from voxbox.core.events import publish_ephemeral
from voxbox.core.principal import Principal
from voxbox.core.usage import check_room, room
from voxbox.core.views import PresenceOut, Timestamp
from voxbox.db.models import Upload, UploadPart
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

METADATA_KEYS = frozenset({"filename", "content_type", "chat_id", "kind"})
MAX_METADATA_BYTES = 4096
# PATCH bodies up to this size feed the recording analyzer (MediaRecorder sends ~1 s chunks).
RECORDING_CHUNK_MAX = 1024 * 1024
# While chunks arrive, "recording" presence is refreshed once per this many seconds.
RECORDING_PRESENCE_EVERY = 3.0
SHARE_MAX_FILES = 20


class UploadOut(BaseModel):
    id: str
    offset: int
    length: int | None
    metadata: dict[str, str]
    created_at: Timestamp
    expires_at: Timestamp


def upload_out(upload: Upload) -> UploadOut:
    return UploadOut(
        id=upload.id,
        offset=upload.offset,
        length=upload.length,
        metadata=json.loads(upload.metadata_json),
        created_at=upload.created_at,
        expires_at=upload.expires_at,
    )


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value may be absent)."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadRequest("Upload-Metadata is too long.")
    metadata: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key or key in metadata:
            raise BadRequest("Upload-Metadata has an empty or repeated key.")
        try:
            metadata[key] = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 UTF-8.") from exc
    return {k: v for k, v in metadata.items() if k in METADATA_KEYS}


async def access_upload(session: AsyncSession, user: Principal, upload_id: str) -> Upload:
    """The caller's own unexpired upload; NotFound for anything else."""
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.user_id != user.id or upload.expires_at <= utcnow():
        raise NotFound("No such upload.")
    return upload


def _expiry(b: Backends, now: datetime) -> datetime:
    return now + timedelta(hours=b.settings.limits.draft_ttl_hours)


async def create_upload(
    b: Backends, user: Principal, length: int | None, metadata: dict[str, str]
) -> UploadOut:
    """A new upload of ``length`` bytes, or of deferred length (a recording in progress)."""
    _check_length(b, length)
    check_disk(b, length or 0)
    async with b.transaction() as session:
        left = await room(session, b, user.id, new_upload=True)
        check_room(b, left, 1 if length is None else length)  # a recording needs some room
        upload = await _new_upload(session, b, user, length, metadata)
        session.add(upload)
    return upload_out(upload)


def _check_length(b: Backends, length: int | None) -> None:
    if length is not None and length > b.settings.limits.upload_max_bytes:
        raise PayloadTooLarge(f"Uploads are limited to {b.settings.limits.upload_max_bytes} bytes.")


async def _new_upload(
    session: AsyncSession,
    b: Backends,
    user: Principal,
    length: int | None,
    metadata: dict[str, str],
    upload_id: str | None = None,
) -> Upload:
    """An empty open upload row, after checking its metadata (kind, a chat the user may post
    in). Runs inside a write transaction; the caller adds it."""
    kind = metadata.get("kind")
    if kind is not None and kind not in ("voice", "audio"):
        raise Invalid("Upload kind is 'voice' or 'audio'.")
    chat_id = metadata.get("chat_id")
    if chat_id:
        _, member = await access_chat(session, user.id, chat_id)
        check_active(member)
    now = utcnow()
    return Upload(
        id=upload_id or new_id(),
        user_id=user.id,
        offset=0,
        length=length,
        metadata_json=json.dumps(metadata),
        chat_id=chat_id or None,
        kind=kind,
        state="open",
        created_at=now,
        updated_at=now,
        expires_at=_expiry(b, now),
    )


async def store_upload(
    b: Backends, user: Principal, metadata: dict[str, str], body: AsyncIterator[bytes]
) -> UploadOut | None:
    """A complete upload from a body that arrives in one go (a file shared into the app):
    spooled to disk, never held in memory, up to the upload size limit (PayloadTooLarge past
    it, keeping nothing); then committed with ``offset == length``, as if sent in one PATCH.
    It is listed among the open uploads and finished like any other. None for an empty body
    (nothing is stored)."""
    limit = b.settings.limits.upload_max_bytes
    check_disk(b)
    async with b.read() as session:
        left = await room(session, b, user.id, new_upload=True)
    spool = b.spool_dir / f"part-{new_id().lower()}"
    size = 0
    try:
        with spool.open("wb") as out:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"Uploads are limited to {limit} bytes.")
                check_room(b, left, size)
                if size // DISK_CHECK_EVERY != (size - len(chunk)) // DISK_CHECK_EVERY:
                    check_disk(b)
                out.write(chunk)
        if size == 0:
            return None
        upload_id = new_id()
        key = f"uploads/{upload_id.lower()}/{0:016d}"
        await b.store.put_file(key, spool, move=True)
        try:
            async with b.transaction() as session:
                upload = await _new_upload(session, b, user, size, metadata, upload_id)
                upload.offset = size
                session.add(upload)
                await session.flush()  # the row before its part (foreign key)
                session.add(UploadPart(upload_id=upload.id, offset=0, size=size, key=key))
        except BaseException:
            await b.store.delete(key)
            raise
    finally:
        spool.unlink(missing_ok=True)
    return upload_out(upload)


@dataclass
class IncomingFile:
    """A file arriving in a request body (a form post), read once."""

    filename: str
    content_type: str | None
    body: AsyncIterator[bytes]


async def store_shared_files(
    b: Backends, user: Principal, files: AsyncIterator[IncomingFile]
) -> list[UploadOut]:
    """Files shared into the app (the Web Share Target) as complete ``audio`` uploads of the
    user's, with no chat yet: the app then lets the user pick chats and finishes each. All or
    nothing: on any error the uploads already stored are discarded. Empty files are skipped.
    At most ``SHARE_MAX_FILES`` files (PayloadTooLarge)."""
    stored: list[UploadOut] = []
    try:
        async for file in files:
            if len(stored) >= SHARE_MAX_FILES:
                raise PayloadTooLarge(f"Share at most {SHARE_MAX_FILES} files at once.")
            metadata = {
                "filename": file.filename[:255],
                "content_type": (file.content_type or "application/octet-stream")[:128],
                "kind": "audio",
            }
            upload = await store_upload(b, user, metadata, file.body)
            if upload is not None:
                stored.append(upload)
    except BaseException:
        for upload in stored:
            with contextlib.suppress(Exception):
                await discard_upload(b, user, upload.id)
        raise
    return stored


async def get_upload(b: Backends, user: Principal, upload_id: str) -> UploadOut:
    async with b.read() as session:
        return upload_out(await access_upload(session, user, upload_id))


async def list_open_uploads(b: Backends, user: Principal) -> list[UploadOut]:
    async with b.read() as session:
        rows = await session.scalars(
            select(Upload)
            .where(Upload.user_id == user.id, Upload.expires_at > utcnow())
            .order_by(Upload.id.desc())
        )
        return [upload_out(u) for u in rows]


@dataclass(frozen=True)
class PatchResult:
    upload: UploadOut
    disconnected: bool


async def append(
    b: Backends,
    user: Principal,
    upload_id: str,
    offset: int,
    body: AsyncIterator[bytes],
    new_length: int | None = None,
) -> PatchResult:
    """Append a PATCH body at ``offset``; keeps what arrived if the client goes away mid-body.

    ``body`` raises ConnectionError when the client disconnects. Wrong offset: Conflict.
    """
    async with b.read() as session:
        upload = await access_upload(session, user, upload_id)
        if upload.chat_id is not None:  # a recording for a chat: only while a member of it
            _, member = await access_chat(session, user.id, upload.chat_id)
            check_active(member)
        # A declared length was counted against the quota when the upload was created.
        left = None
        if upload.length is None:
            left = await room(session, b, user.id, new_upload=False)
    if upload.state != "open":
        raise Conflict("This upload is being finished.")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset is {upload.offset}, not {offset}.")
    length = upload.length
    if new_length is not None:
        if length is not None and new_length != length:
            raise BadRequest("Upload-Length is already set.")
        if new_length < offset or new_length > b.settings.limits.upload_max_bytes:
            raise PayloadTooLarge("Upload-Length is out of range.")
        check_room(b, left, new_length - offset)
        length = new_length
    check_disk(b)
    limit = length if length is not None else b.settings.limits.upload_max_bytes
    spool = b.spool_dir / f"part-{new_id().lower()}"
    size, disconnected = 0, False
    # A recording's chunk (about a second of audio) also goes to its analyzer, after commit.
    recording: list[bytes] | None = [] if upload.kind == "voice" else None
    try:
        with spool.open("wb") as out:
            try:
                async for chunk in body:
                    size += len(chunk)
                    if recording is not None:
                        recording.append(chunk)
                        if size > RECORDING_CHUNK_MAX:
                            recording = None
                    if offset + size > limit:
                        raise PayloadTooLarge(
                            "The body goes past the upload's length."
                            if length is not None
                            else f"Uploads are limited to {limit} bytes."
                        )
                    if length is None:
                        check_room(b, left, size)
                    if size // DISK_CHECK_EVERY != (size - len(chunk)) // DISK_CHECK_EVERY:
                        check_disk(b)
                    out.write(chunk)
            except ConnectionError:
                disconnected = True
        if disconnected and new_length is not None and upload.length is None:
            # The length came with a body that broke off: keep the bytes, not the length. A
            # client that is still there declares it again when it resumes; a tab that was
            # closed mid-recording leaves a deferred draft that can still be sent as it is.
            length = None
        previous_patch = upload.updated_at
        upload = await _commit_part(b, user, upload, offset, size, length, spool)
    finally:
        spool.unlink(missing_ok=True)
    if recording is None:
        b.recordings.forget(upload.id)
    else:
        await asyncio.to_thread(b.recordings.feed, upload.id, offset, b"".join(recording))
    if upload.kind == "voice" and upload.chat_id and upload.length is None:
        # Refresh "recording" when a new presence period starts; no per-process state needed.
        period = RECORDING_PRESENCE_EVERY
        if offset == 0 or (
            previous_patch.timestamp() // period != upload.updated_at.timestamp() // period
        ):
            await _recording_presence(b, user, upload.chat_id, "recording")
    return PatchResult(upload_out(upload), disconnected)


async def _commit_part(
    b: Backends,
    user: Principal,
    upload: Upload,
    offset: int,
    size: int,
    length: int | None,
    spool: Path,
) -> Upload:
    key = f"uploads/{upload.id.lower()}/{offset:016d}"
    if size:
        await b.store.put_file(key, spool, move=True)
    now = utcnow()
    async with b.transaction() as session:
        moved = await session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.offset == offset, Upload.state == "open")
            .values(offset=offset + size, length=length, updated_at=now, expires_at=_expiry(b, now))
            .returning(Upload.id)
        )
        if moved.first() is None:
            raise Conflict("Another request moved this upload's offset.")
        if size:
            session.add(UploadPart(upload_id=upload.id, offset=offset, size=size, key=key))
        return await access_upload(session, user, upload.id)


async def _recording_presence(
    b: Backends, user: Principal, chat_id: str, state: Literal["recording", "idle"]
) -> None:
    async with b.read() as session:
        recipients = [u for u in await active_member_ids(session, chat_id) if u != user.id]
    await publish_ephemeral(
        b.bus, recipients, "presence", PresenceOut(chat_id=chat_id, handle=user.handle, state=state)
    )


async def part_keys(session: AsyncSession, upload_id: str) -> list[str]:
    return list(
        await session.scalars(
            select(UploadPart.key)
            .where(UploadPart.upload_id == upload_id)
            .order_by(UploadPart.offset)
        )
    )


@dataclass(frozen=True)
class DraftContent:
    """A draft's bytes so far, with an allow-listed type (the declared one if it is audio or
    video, else ``application/octet-stream``) and a safe file name."""

    upload: UploadOut
    content_type: str
    filename: str
    chunks: AsyncIterator[bytes]

    @property
    def inline(self) -> bool:
        return mediatypes.is_inline(self.content_type)


async def read_upload(b: Backends, user: Principal, upload_id: str) -> DraftContent:
    """The bytes received so far (a draft's preview), streamed part by part."""
    async with b.read() as session:
        upload = await access_upload(session, user, upload_id)
        keys = await part_keys(session, upload_id)

    async def chunks() -> AsyncIterator[bytes]:
        for key in keys:
            async with await b.store.open(key) as stream:
                async for chunk in stream:
                    yield chunk

    draft = upload_out(upload)
    return DraftContent(
        upload=draft,
        content_type=mediatypes.safe_content_type(draft.metadata.get("content_type")),
        filename=mediatypes.safe_filename(draft.metadata.get("filename"), "draft"),
        chunks=chunks(),
    )


async def discard_upload(b: Backends, user: Principal, upload_id: str) -> None:
    """Delete a draft and its bytes (tus termination)."""
    async with b.transaction() as session:
        upload = await access_upload(session, user, upload_id)
        keys = await part_keys(session, upload_id)
        await session.execute(delete(Upload).where(Upload.id == upload_id))
    b.recordings.forget(upload_id)
    await delete_blobs(b, keys)
    if upload.kind == "voice" and upload.chat_id:
        with contextlib.suppress(Exception):  # the chat may be gone; presence is best effort
            await _recording_presence(b, user, upload.chat_id, "idle")


DELETE_BLOBS = "delete_blobs"  # the job of delete_blobs, for what need not be waited for


async def delete_blobs(b: Backends, keys: list[str]) -> None:
    for key in keys:
        await b.store.delete(key)


async def reopen_stuck_uploads(b: Backends, finishing_since: datetime) -> int:
    """Uploads left ``finishing`` since before ``finishing_since`` go back to ``open``: the
    process finishing them died (kill -9, a crash). The draft can then be sent again; finishing
    is idempotent (the same bytes make the same media). Returns how many."""
    async with b.transaction() as session:
        result = await session.execute(
            update(Upload)
            .where(Upload.state == "finishing", Upload.updated_at < finishing_since)
            .values(state="open")
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def expire_uploads(b: Backends) -> int:
    """Delete uploads past their expiry and their parts; returns how many. Idempotent."""
    async with b.transaction() as session:
        expired = list(
            await session.scalars(select(Upload.id).where(Upload.expires_at <= utcnow()))
        )
        keys = list(
            await session.scalars(select(UploadPart.key).where(UploadPart.upload_id.in_(expired)))
        )
        if expired:
            await session.execute(delete(Upload).where(Upload.id.in_(expired)))
    await delete_blobs(b, keys)
    return len(expired)
