"""Media: turning finished uploads into voice notes and audio files, access, renditions, cleanup.

Blobs are content-addressed: the original's key comes from the sha256 of the uploaded bytes, the
Ogg/Opus rendition's from its own sha256. Sending the same bytes again reuses both (no second
blob, no second transcode); a blob is deleted once no media row points at it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox import media as pipeline
from voxbox.core import mediatypes
from voxbox.core.backends import Backends
from voxbox.core.errors import (
    Conflict,
    Invalid,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
    VoxboxError,
)
from voxbox.core.events import log_event
from voxbox.core.uploads import access_upload, delete_blobs, part_keys
from voxbox.core.views import MediaOut, media_out
from voxbox.db.models import HiddenMessage, Media, Member, Message, Receipt, Upload, User
from voxbox.ids import new_id
from voxbox.metrics import MEDIA_PROCESS_SECONDS
from voxbox.storage import blob_key
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)

MediaKind = Literal["voice", "audio"]
Format = Literal["original", "ogg", "mp3"]


def _refusal(exc: pipeline.MediaError) -> VoxboxError:
    if isinstance(exc, pipeline.NotAudio):
        return UnsupportedMedia(str(exc))
    if isinstance(exc, pipeline.TooLong | pipeline.DecodeTimeout):
        return PayloadTooLarge(str(exc))
    return Invalid(str(exc))


def _limits(b: Backends, kind: MediaKind) -> pipeline.MediaLimits:
    limits = b.settings.limits
    seconds = limits.voice_max_seconds if kind == "voice" else limits.audio_max_seconds
    return pipeline.MediaLimits(
        max_duration_ms=seconds * 1000, max_decode_seconds=limits.decode_max_seconds
    )


@dataclass
class _Work:
    """Scratch files of one ingest; removed whatever happens."""

    dir: Path

    @property
    def source(self) -> Path:
        return self.dir / "source"

    @property
    def ogg(self) -> Path:
        return self.dir / "out.ogg"

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


async def finish_upload(b: Backends, user: User, upload_id: str, kind: MediaKind) -> Media:
    """Turn the caller's upload into media; the upload is gone afterwards.

    A refused upload (not audio, corrupt, too long) is deleted with its bytes, leaving no blob,
    no temp file and no media row. Long non-Opus files are processed by a background job: the
    media comes back ``processing`` and a ``media.ready`` event follows.
    """
    async with b.transaction() as session:
        upload = await access_upload(session, user, upload_id)
        if upload.state != "open":
            raise Conflict("This upload is being finished.")
        if upload.length is not None and upload.offset < upload.length:
            raise Invalid(f"The upload is incomplete: {upload.offset} of {upload.length} bytes.")
        upload.state = "finishing"
        keys = await part_keys(session, upload.id)
        metadata = json.loads(upload.metadata_json)
    work = _Work(b.spool_dir / f"ingest-{new_id().lower()}")
    try:
        if upload.offset == 0:
            raise Invalid("The upload is empty.")
        analyzer = b.recordings.take(upload.id, upload.offset)
        media = await _ingest(b, user, kind, keys, metadata, work, analyzer)
    except VoxboxError:
        await _drop_upload(b, upload.id, keys)
        raise
    except BaseException:
        async with b.transaction() as session:  # let the client try again
            await session.execute(update(Upload).where(Upload.id == upload.id).values(state="open"))
        raise
    finally:
        await asyncio.to_thread(work.remove)
    await _drop_upload(b, upload.id, keys, in_background=True)
    return media


async def _drop_upload(
    b: Backends, upload_id: str, keys: list[str], *, in_background: bool = False
) -> None:
    """Delete the upload; its part blobs now, or (after a send) in a job so the sender does
    not wait for one deletion per recorded second. Orphaned parts are harmless meanwhile."""
    async with b.transaction() as session:
        await session.execute(delete(Upload).where(Upload.id == upload_id))
    if in_background:
        b.jobs.submit(f"drop-parts-{upload_id}", functools.partial(delete_blobs, b, keys))
    else:
        await delete_blobs(b, keys)


async def _assemble(b: Backends, keys: list[str], dest: Path) -> tuple[str, int]:
    """Concatenate the parts into ``dest``; returns (sha256 hex, size)."""
    digest, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        for key in keys:
            async with await b.store.open(key) as stream:
                async for chunk in stream:
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    return digest.hexdigest(), size


def _sha256_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def _ingest(
    b: Backends,
    user: User,
    kind: MediaKind,
    keys: list[str],
    metadata: dict[str, str],
    work: _Work,
    analyzer: pipeline.StreamingOpusAnalyzer | None,
) -> Media:
    await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
    sha, size = await _assemble(b, keys, work.source)
    filename = mediatypes.safe_filename(
        metadata.get("filename"), "voice-message.ogg" if kind == "voice" else "audio"
    )
    media = Media(
        id=new_id(),
        uploader_id=user.id,
        kind=kind,
        state="ready",
        filename=filename,
        source_sha256=sha,
        source_size=size,
        created_at=utcnow(),
        # Set from the probed bytes below; what the client declared is never served.
        source_content_type=mediatypes.OCTET_STREAM,
    )
    async with b.read() as session:
        twin = await session.scalar(
            select(Media)
            .where(Media.source_sha256 == sha, Media.kind == kind, Media.state == "ready")
            .limit(1)
        )
    if twin is not None:  # the same bytes were sent before: reuse blobs and analysis
        for field in (
            "source_content_type",
            "original_key",
            "ogg_key",
            "ogg_size",
            "mp3_key",
            "mp3_size",
            "duration_ms",
            "waveform",
        ):
            setattr(media, field, getattr(twin, field))
    else:
        try:
            probe = await asyncio.to_thread(pipeline.probe, work.source)
        except pipeline.MediaError as exc:
            raise _refusal(exc) from exc
        media.source_content_type = mediatypes.probed_content_type(probe)
        if kind == "audio" or _runs_in_background(b, probe):
            media.original_key = blob_key(sha)
            await b.store.put_file(media.original_key, work.source)
        if _runs_in_background(b, probe):
            media.state = "processing"
        else:
            await _process(b, media, work.source, work.ogg, analyzer)
    async with b.transaction() as session:
        session.add(media)
    if media.state == "processing":
        b.jobs.submit(
            f"process-media-{media.id}", functools.partial(process_media_job, b, media.id)
        )
    return media


def _runs_in_background(b: Backends, probe: pipeline.Probe) -> bool:
    claimed = probe.duration_ms or 0
    return probe.codec != "opus" and claimed > b.settings.limits.inline_max_seconds * 1000


async def _process(
    b: Backends,
    media: Media,
    source: Path,
    ogg: Path,
    analyzer: pipeline.StreamingOpusAnalyzer | None = None,
) -> None:
    """Run the pipeline on ``source`` and store the Ogg/Opus rendition; fills in ``media``.

    A voice note may be a recording cut off mid-chunk (a tab closed while recording): what
    decodes is kept.
    """
    started = time.perf_counter()
    streamed = analyzer is not None and analyzer.active
    try:
        result = await asyncio.to_thread(
            pipeline.process,
            source,
            ogg,
            _limits(b, media.kind),  # type: ignore[arg-type]
            allow_truncated=media.kind == "voice",
            analyzer=analyzer,
        )
    except pipeline.MediaError as exc:
        raise _refusal(exc) from exc
    path = "transcode" if not result.remuxed else "streamed" if streamed else "remux"
    MEDIA_PROCESS_SECONDS.labels(path).observe(time.perf_counter() - started)
    ogg_sha, ogg_size = await asyncio.to_thread(_sha256_file, ogg)
    media.ogg_key, media.ogg_size = blob_key(ogg_sha, ".ogg"), ogg_size
    await b.store.put_file(media.ogg_key, ogg, move=True)
    media.duration_ms, media.waveform = result.duration_ms, json.dumps(result.waveform)


async def process_media_job(b: Backends, media_id: str) -> None:
    """Background processing of a long file. Idempotent: does nothing unless ``processing``."""
    async with b.read() as session:
        media = await session.get(Media, media_id)
    if media is None or media.state != "processing" or media.original_key is None:
        return
    work = _Work(b.spool_dir / f"job-{new_id().lower()}")
    try:
        await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
        await b.store.fetch_to_file(media.original_key, work.source)
        try:
            await _process(b, media, work.source, work.ogg)
            media.state, media.error = "ready", None
        except VoxboxError as exc:
            media.state, media.error = "failed", exc.detail
    finally:
        await asyncio.to_thread(work.remove)
    drop_original = media.kind == "voice"
    async with b.transaction() as session:
        row = await session.get(Media, media_id)
        if row is None:
            return
        for field in ("state", "error", "ogg_key", "ogg_size", "duration_ms", "waveform"):
            setattr(row, field, getattr(media, field))
        if drop_original:
            row.original_key = None
        await log_event(
            session,
            await _audience(session, row),
            "media.ready" if row.state == "ready" else "media.failed",
            media_out(row),
        )
    if drop_original and media.original_key:
        await _delete_unreferenced(b, [media.original_key])


async def resume_processing(b: Backends) -> int:
    """Queue the jobs of media still ``processing`` (e.g. interrupted by a restart)."""
    async with b.read() as session:
        ids = list(await session.scalars(select(Media.id).where(Media.state == "processing")))
    for media_id in ids:
        b.jobs.submit(
            f"process-media-{media_id}", functools.partial(process_media_job, b, media_id)
        )
    return len(ids)


async def _audience(session: AsyncSession, media: Media) -> list[str]:
    """The uploader and the current members of every chat the media was posted in."""
    rows = await session.scalars(
        select(Member.user_id)
        .join(Message, Message.chat_id == Member.chat_id)
        .where(Message.media_id == media.id, Member.left_id.is_(None))
    )
    return sorted({media.uploader_id, *rows})


async def access_media(session: AsyncSession, user_id: str, media_id: str) -> Media:
    """Media the user may fetch: their own upload, or posted (not deleted) in a message they
    can see — except a view-once voice message they received and already played."""
    media = await session.get(Media, media_id)
    if media is None:
        raise NotFound("No such media.")
    if media.uploader_id == user_id:
        return media
    rows = await session.execute(
        select(Message, Member)
        .join(Member, (Member.chat_id == Message.chat_id) & (Member.user_id == user_id))
        .where(Message.media_id == media_id, Message.deleted_at.is_(None))
    )
    for message, member in rows.all():
        if message.id <= member.joined_id or (member.left_id and message.id > member.left_id):
            continue
        if await session.get(HiddenMessage, (user_id, message.id)) is not None:
            continue
        if message.view_once:
            receipt = await session.get(Receipt, (message.id, user_id))
            if receipt is not None and receipt.played_at is not None:
                continue
        return media
    raise NotFound("No such media.")


async def get_media(b: Backends, user: User, media_id: str) -> MediaOut:
    async with b.read() as session:
        return media_out(await access_media(session, user.id, media_id))


@dataclass(frozen=True)
class Content:
    """Where a rendition's bytes are and how to serve them. ``content_type`` is from the
    allow-list (see core/mediatypes.py); bytes that are not ``inline`` are an attachment."""

    key: str
    size: int
    etag: str
    content_type: str
    filename: str

    @property
    def inline(self) -> bool:
        return mediatypes.is_inline(self.content_type)


async def media_content(b: Backends, user: User, media_id: str, fmt: Format) -> Content:
    """Where the bytes of a rendition are; the MP3 is made on first request and kept."""
    async with b.read() as session:
        media = await access_media(session, user.id, media_id)
    stem = media.filename.rsplit(".", 1)[0] if "." in media.filename else media.filename
    if fmt == "original":
        if media.original_key is None:
            fmt = "ogg"  # a voice note's original is its Ogg/Opus
        else:
            return Content(
                media.original_key,
                media.source_size,
                f'"{media.source_sha256}"',
                mediatypes.safe_content_type(media.source_content_type),
                media.filename,
            )
    if media.ogg_key is None or media.ogg_size is None:
        raise Conflict(
            "This media is still being processed."
            if media.state == "processing"
            else f"This media could not be processed: {media.error}"
        )
    if fmt == "ogg":
        return Content(
            media.ogg_key,
            media.ogg_size,
            f'"{media.ogg_key.rsplit("/", 1)[-1]}"',
            "audio/ogg; codecs=opus",
            f"{stem}.ogg",
        )
    if media.mp3_key is None or media.mp3_size is None:
        await _render_mp3(b, media)
    assert media.mp3_key is not None and media.mp3_size is not None
    return Content(
        media.mp3_key,
        media.mp3_size,
        f'"{media.mp3_key.rsplit("/", 1)[-1]}"',
        "audio/mpeg",
        f"{stem}.mp3",
    )


async def _render_mp3(b: Backends, media: Media) -> None:
    assert media.ogg_key is not None
    work = _Work(b.spool_dir / f"mp3-{new_id().lower()}")
    try:
        await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
        await b.store.fetch_to_file(media.ogg_key, work.ogg)
        mp3 = work.dir / "out.mp3"
        await asyncio.to_thread(pipeline.render_mp3, work.ogg, mp3)
        sha, size = await asyncio.to_thread(_sha256_file, mp3)
        media.mp3_key, media.mp3_size = blob_key(sha, ".mp3"), size
        await b.store.put_file(media.mp3_key, mp3, move=True)
    finally:
        await asyncio.to_thread(work.remove)
    async with b.transaction() as session:
        # Every media with this Ogg rendition can use the MP3.
        await session.execute(
            update(Media)
            .where(Media.ogg_key == media.ogg_key)
            .values(mp3_key=media.mp3_key, mp3_size=media.mp3_size)
        )


async def release_media(b: Backends, media_id: str) -> None:
    """A message let go of this media: delete it and its blobs if nothing else uses it."""
    async with b.transaction() as session:
        media = await session.get(Media, media_id)
        if media is None or await session.scalar(
            select(Message.id).where(Message.media_id == media_id).limit(1)
        ):
            return
        await session.delete(media)
    await _delete_unreferenced(
        b, [k for k in (media.original_key, media.ogg_key, media.mp3_key) if k]
    )


async def collect_garbage(b: Backends) -> int:
    """Delete posted-nowhere media older than the draft lifetime, then blobs nothing points at.

    Returns the number of blobs deleted. Idempotent; safe to run on several workers.
    """
    cutoff = utcnow() - timedelta(hours=b.settings.limits.draft_ttl_hours)
    async with b.transaction() as session:
        orphans = list(
            await session.scalars(
                select(Media).where(
                    Media.created_at < cutoff,
                    ~select(Message.id).where(Message.media_id == Media.id).exists(),
                )
            )
        )
        keys = [k for m in orphans for k in (m.original_key, m.ogg_key, m.mp3_key) if k]
        if orphans:
            await session.execute(delete(Media).where(Media.id.in_([m.id for m in orphans])))
    return await _delete_unreferenced(b, keys)


async def _delete_unreferenced(b: Backends, keys: list[str]) -> int:
    deleted = 0
    for key in set(keys):
        async with b.read() as session:
            used = await session.scalar(
                select(Media.id)
                .where(or_(Media.original_key == key, Media.ogg_key == key, Media.mp3_key == key))
                .limit(1)
            )
        if used is None:
            await b.store.delete(key)
            deleted += 1
    return deleted
