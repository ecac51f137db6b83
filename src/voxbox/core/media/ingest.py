"""Ingest: a finished upload becomes a voice note or an audio file (media row + blobs).

Blobs are content-addressed: the original's key comes from the sha256 of the uploaded bytes, the
Ogg/Opus rendition's from its own sha256. Sending the same bytes again reuses both (no second
blob, no second transcode).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import and_, delete, or_, select, update

from voxbox import media as pipeline
from voxbox.core import mediatypes
from voxbox.core.backends import Backends
from voxbox.core.errors import Conflict, Invalid, TooLong, VoxboxError, blobs_must_exist
from voxbox.core.media import processing
from voxbox.core.media.jobs import defer_processing
from voxbox.core.media.processing import MediaKind, Work
from voxbox.core.principal import Principal
from voxbox.core.uploads import DELETE_BLOBS, access_upload, delete_blobs, part_keys
from voxbox.core.views import MediaOut, media_out
from voxbox.db.models import Media, Upload
from voxbox.ids import new_id
from voxbox.storage import blob_key
from voxbox.timeutil import utcnow


async def finish_upload(b: Backends, user: Principal, upload_id: str, kind: MediaKind) -> MediaOut:
    """Turn the caller's upload into media; the upload is gone afterwards.

    Check, then do. What the bytes tell before anything is made is checked first: a file whose
    headers credibly claim more than the duration limit of ``kind`` is ``TooLong`` (413) and the
    upload stays as it was (a draft to preview or discard). A header that claims more than the
    file holds is not trusted: such a file is decoded inline and measured.

    A file refused while being processed (not audio, corrupt, too long) is deleted with its
    bytes, leaving no blob, no temp file and no media row. Long non-Opus files are processed by
    a background job: the media comes back ``processing`` and a ``media.ready`` event follows.
    """
    lease = timedelta(seconds=b.settings.limits.finish_lease_seconds)
    async with b.transaction() as session:
        upload = await access_upload(session, user, upload_id)
        if upload.length is not None and upload.offset < upload.length:
            raise Invalid(f"The upload is incomplete: {upload.offset} of {upload.length} bytes.")
        # Claimed in one statement, so two sends never both finish it. A lease past its end
        # means the process finishing it died (kill -9): this one takes over. Finishing is
        # idempotent: the same bytes make the same media.
        now = utcnow()
        claimed = await session.execute(
            update(Upload)
            .where(
                Upload.id == upload.id,
                or_(
                    Upload.state == "open",
                    and_(Upload.state == "finishing", Upload.updated_at <= now - lease),
                ),
            )
            .values(state="finishing", updated_at=now)  # the lease starts
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("This upload is being finished.")
        keys = await part_keys(session, upload.id)
        metadata = json.loads(upload.metadata_json)
    work = Work(b.spool_dir / f"ingest-{new_id().lower()}")
    draft_kept = False
    try:
        if upload.offset == 0:
            raise Invalid("The upload is empty.")
        try:
            source = await _check_source(b, kind, keys, work)
        except TooLong:
            draft_kept = True
            raise
        analyzer = b.recordings.take(upload.id, upload.offset)
        media = await _ingest(b, user, kind, source, metadata, work, analyzer)
    except VoxboxError:
        if draft_kept:
            await _reopen(b, upload.id)
        else:
            await _drop_upload(b, upload.id, keys)
        raise
    except BaseException:
        await _reopen(b, upload.id)  # let the client try again
        raise
    finally:
        await asyncio.to_thread(work.remove)
    await _drop_upload(b, upload.id, keys, in_background=True)
    return media_out(media)


async def _reopen(b: Backends, upload_id: str) -> None:
    async with b.transaction() as session:
        await session.execute(update(Upload).where(Upload.id == upload_id).values(state="open"))


async def _drop_upload(
    b: Backends, upload_id: str, keys: list[str], *, in_background: bool = False
) -> None:
    """Delete the upload; its part blobs now, or (after a send) in a job so the sender does
    not wait for one deletion per recorded second. Orphaned parts are harmless meanwhile."""
    async with b.transaction() as session:
        await session.execute(delete(Upload).where(Upload.id == upload_id))
        if in_background:
            await b.jobs.defer(session, DELETE_BLOBS, keys=keys)
    if not in_background:
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


@dataclass(frozen=True)
class _Source:
    """The assembled upload (at ``work.source``) and what is known of it before processing:
    a ready media with the same bytes and kind (``twin``), or else the ``probe``."""

    sha256: str
    size: int
    twin: Media | None
    probe: pipeline.Probe | None


async def _check_source(b: Backends, kind: MediaKind, keys: list[str], work: Work) -> _Source:
    """Assemble the parts into ``work.source`` and refuse what the bytes already tell (see
    ``_examine``)."""
    await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
    with blobs_must_exist():
        sha, size = await _assemble(b, keys, work.source)
    return await _examine(b, kind, sha, size, work)


async def _examine(b: Backends, kind: MediaKind, sha: str, size: int, work: Work) -> _Source:
    """Refuse what the bytes at ``work.source`` already tell: not audio (415), damaged (422), a
    credible claim past the duration limit (``TooLong``, 413). Writes nothing but scratch
    files."""
    async with b.read() as session:
        twin = await session.scalar(
            select(Media)
            .where(Media.source_sha256 == sha, Media.kind == kind, Media.state == "ready")
            .limit(1)
        )
    if twin is not None:  # the same bytes were accepted before: nothing to look at
        return _Source(sha, size, twin, None)
    try:
        probe = await asyncio.to_thread(pipeline.probe, work.source)
        pipeline.refuse_claimed_duration(probe, processing.limits_for(b, kind))
    except pipeline.MediaError as exc:
        raise processing.refusal(exc) from exc
    return _Source(sha, size, None, probe)


async def ingest_file(
    b: Backends, user: Principal, kind: MediaKind, path: Path, filename: str
) -> Media:
    """Make media of a local file (which this takes over), processed now, whatever its
    length; the row is not inserted: the caller adds it with the message that uses it. For
    imports, which run as jobs already."""
    work = Work(b.spool_dir / f"ingest-{new_id().lower()}")
    try:
        await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.replace, work.source)
        sha, size = await asyncio.to_thread(processing.sha256_file, work.source)
        source = await _examine(b, kind, sha, size, work)
        return await _make_media(
            b, user, kind, source, {"filename": filename}, work, None, inline=True
        )
    finally:
        await asyncio.to_thread(work.remove)


async def _ingest(
    b: Backends,
    user: Principal,
    kind: MediaKind,
    source: _Source,
    metadata: dict[str, str],
    work: Work,
    analyzer: pipeline.StreamingOpusAnalyzer | None,
) -> Media:
    """Make the media of a checked source: store, process inline or queue, insert the row."""
    media = await _make_media(b, user, kind, source, metadata, work, analyzer, inline=False)
    async with b.transaction() as session:
        session.add(media)
        if media.state == "processing":
            await defer_processing(b, session, media.id)
    return media


async def _make_media(
    b: Backends,
    user: Principal,
    kind: MediaKind,
    source: _Source,
    metadata: dict[str, str],
    work: Work,
    analyzer: pipeline.StreamingOpusAnalyzer | None,
    *,
    inline: bool,
) -> Media:
    """The media row of a checked source, its blobs stored: processed now, or (long non-Opus
    files, unless ``inline``) left ``processing`` for a job."""
    filename = mediatypes.safe_filename(
        metadata.get("filename"), "voice-message.ogg" if kind == "voice" else "audio"
    )
    media = Media(
        id=new_id(),
        uploader_id=user.id,
        kind=kind,
        state="ready",
        filename=filename,
        source_sha256=source.sha256,
        source_size=source.size,
        created_at=utcnow(),
        # Set from the probed bytes below; what the client declared is never served.
        source_content_type=mediatypes.OCTET_STREAM,
    )
    if source.twin is not None:  # the same bytes were sent before: reuse blobs and analysis
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
            setattr(media, field, getattr(source.twin, field))
    else:
        assert source.probe is not None
        media.source_content_type = mediatypes.probed_content_type(source.probe)
        background = not inline and _runs_in_background(b, source.probe)
        if kind == "audio" or background:
            media.original_key = blob_key(source.sha256)
            await b.store.put_file(media.original_key, work.source)
        if background:
            media.state = "processing"
        else:
            await processing.process_source(b, media, work.source, work.ogg, analyzer)
    return media


def _runs_in_background(b: Backends, probe: pipeline.Probe) -> bool:
    """Long non-Opus files are transcoded by a job. A claim of more than the file holds does
    not count: such a file is decoded inline, where the limits bound the work."""
    claimed = probe.credible_duration_ms or 0
    return probe.codec != "opus" and claimed > b.settings.limits.inline_max_seconds * 1000
