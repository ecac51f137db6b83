"""Garbage collection: media nothing uses any more, and blobs no media row points at."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select

from voxbox.core.backends import Backends
from voxbox.db.models import Media, Message
from voxbox.timeutil import utcnow


async def release_media(b: Backends, media_id: str) -> None:
    """A message let go of this media: delete it and its blobs if nothing else uses it."""
    async with b.transaction() as session:
        media = await session.get(Media, media_id)
        if media is None or await session.scalar(
            select(Message.id).where(Message.media_id == media_id).limit(1)
        ):
            return
        await session.delete(media)
    await delete_unreferenced(
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
    return await delete_unreferenced(b, keys)


async def delete_unreferenced(b: Backends, keys: list[str]) -> int:
    """Delete those of ``keys`` that no media row points at; returns how many."""
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
