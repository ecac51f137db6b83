"""How much storage each user takes, and their quota.

A user's bytes are their media (the Ogg/Opus and MP3 copies, and an audio file's original)
and their drafts (an open upload counts its declared length, else what arrived so far). A
backup waiting to be downloaded does not count: it copies what does, and expires.

New bytes are refused past the quota (``limits.storage_quota_bytes``), past
``limits.open_uploads_max`` drafts, and while the disk is short of space (core/disk.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.backends import Backends
from voxbox.core.disk import check_disk
from voxbox.core.errors import QuotaExceeded, TooManyUploads
from voxbox.core.views import StorageOut
from voxbox.db.models import Media, Upload, User
from voxbox.timeutil import utcnow


@dataclass(frozen=True)
class Usage:
    media_bytes: int
    draft_bytes: int
    open_uploads: int

    @property
    def used_bytes(self) -> int:
        return self.media_bytes + self.draft_bytes


_MEDIA_BYTES = func.coalesce(Media.ogg_size, 0) + func.coalesce(Media.mp3_size, 0)
_MEDIA_BYTES += case((Media.original_key.is_not(None), Media.source_size), else_=0)
_DRAFT_BYTES = func.coalesce(Upload.length, Upload.offset)


async def usage(session: AsyncSession, user_id: str) -> Usage:
    media = await session.scalar(
        select(func.coalesce(func.sum(_MEDIA_BYTES), 0)).where(Media.uploader_id == user_id)
    )
    drafts = (
        await session.execute(
            select(func.coalesce(func.sum(_DRAFT_BYTES), 0), func.count()).where(
                Upload.user_id == user_id, Upload.expires_at > utcnow()
            )
        )
    ).one()
    return Usage(int(media or 0), int(drafts[0]), int(drafts[1]))


async def my_storage(b: Backends, user_id: str) -> StorageOut:
    async with b.read() as session:
        used = await usage(session, user_id)
    limits = b.settings.limits
    return StorageOut(
        used_bytes=used.used_bytes,
        quota_bytes=limits.storage_quota_bytes or None,
        open_uploads=used.open_uploads,
        open_uploads_max=limits.open_uploads_max,
    )


async def room(session: AsyncSession, b: Backends, user_id: str, *, new_upload: bool) -> int | None:
    """Bytes the user may still add under the quota (None: no quota; zero or less: full).
    ``new_upload``: they are about to open another draft (TooManyUploads past the cap)."""
    used = await usage(session, user_id)
    limits = b.settings.limits
    if new_upload and used.open_uploads >= limits.open_uploads_max:
        raise TooManyUploads(
            f"You have {used.open_uploads} unfinished uploads, the most allowed: send or "
            "discard one first.",
            limit=limits.open_uploads_max,
        )
    if not limits.storage_quota_bytes:
        return None
    return limits.storage_quota_bytes - used.used_bytes


def check_room(b: Backends, left: int | None, incoming: int) -> None:
    """QuotaExceeded when ``incoming`` more bytes do not fit in ``left`` (from ``room``)."""
    if left is not None and incoming > left:
        quota = b.settings.limits.storage_quota_bytes
        used = quota - left
        raise QuotaExceeded(
            f"Your storage is full ({used} of {quota} bytes used): delete drafts or messages "
            "first.",
            used_bytes=used,
            quota_bytes=quota,
        )


async def check_incoming(b: Backends, user_id: str, file: Path) -> None:
    """Refuse a ``file`` that brings media (an import, a restore) past the user's quota or into
    the disk's reserve."""
    size = os.stat(file).st_size
    check_disk(b, size)
    async with b.read() as session:
        check_room(b, await room(session, b, user_id, new_upload=False), size)


async def usage_by_user(b: Backends) -> list[tuple[str, Usage]]:
    """Every user's usage, largest first (``voxbox admin usage``)."""
    async with b.read() as session:
        handles = dict((await session.execute(select(User.id, User.handle))).tuples().all())
        rows = [(handle, await usage(session, user_id)) for user_id, handle in handles.items()]
    return sorted(rows, key=lambda row: (-row[1].used_bytes, row[0]))
