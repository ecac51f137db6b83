"""Serving media: who may fetch it, its metadata, and where each rendition's bytes are."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox import media as pipeline
from voxbox.core import mediatypes
from voxbox.core.access import may_fetch_media
from voxbox.core.backends import Backends
from voxbox.core.errors import Conflict, NotFound, blobs_must_exist
from voxbox.core.media.processing import Work, sha256_file
from voxbox.core.principal import Principal
from voxbox.core.views import MediaOut, media_out
from voxbox.db.models import Media
from voxbox.ids import new_id
from voxbox.storage import BlobStream, RangeNotSatisfiable, blob_key

Format = Literal["original", "ogg", "mp3"]


async def access_media(session: AsyncSession, user_id: str, media_id: str) -> Media:
    """Media the user may fetch (``may_fetch_media``: their own upload, or posted in a message
    they can see that is not deleted and not a view-once they already played); else NotFound."""
    media = await session.scalar(
        select(Media).where(Media.id == media_id, may_fetch_media(user_id))
    )
    if media is None:
        raise NotFound("No such media.")
    return media


async def get_media(b: Backends, user: Principal, media_id: str) -> MediaOut:
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


async def media_content(b: Backends, user: Principal, media_id: str, fmt: Format) -> Content:
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
        with blobs_must_exist():
            await _render_mp3(b, media)
    assert media.mp3_key is not None and media.mp3_size is not None
    return Content(
        media.mp3_key,
        media.mp3_size,
        f'"{media.mp3_key.rsplit("/", 1)[-1]}"',
        "audio/mpeg",
        f"{stem}.mp3",
    )


async def open_content(
    b: Backends, content: Content, wanted: tuple[int, int | None] | None
) -> BlobStream | None:
    """The bytes of a rendition found by ``media_content``: all of them, or the ``(start, end)``
    range ``wanted`` (``end`` inclusive, None for the rest). None when the range starts past
    the end (HTTP 416). The caller iterates the stream (or closes it)."""
    try:
        with blobs_must_exist():
            return await b.store.open(content.key, *(wanted or (0, None)))
    except RangeNotSatisfiable:
        return None


async def _render_mp3(b: Backends, media: Media) -> None:
    assert media.ogg_key is not None
    work = Work(b.spool_dir / f"mp3-{new_id().lower()}")
    try:
        await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
        await b.store.fetch_to_file(media.ogg_key, work.ogg)
        mp3 = work.dir / "out.mp3"
        await asyncio.to_thread(pipeline.render_mp3, work.ogg, mp3)
        sha, size = await asyncio.to_thread(sha256_file, mp3)
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
