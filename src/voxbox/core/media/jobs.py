"""Background processing of long files: the job, and (in-process queue) re-queueing after a
restart."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import active_member_ids
from voxbox.core.backends import Backends
from voxbox.core.errors import VoxboxError
from voxbox.core.events import NewEvent, log_events
from voxbox.core.media import processing
from voxbox.core.media.gc import delete_unreferenced
from voxbox.core.transcripts import defer_if_pending
from voxbox.core.views import load_messages, media_out
from voxbox.db.models import Media, Member, Message
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

PROCESS_MEDIA = "process_media"


async def defer_processing(b: Backends, session: AsyncSession, media_id: str) -> None:
    """Queue the processing of a ``processing`` media, in ``session``'s transaction."""
    await b.jobs.defer(session, PROCESS_MEDIA, media_id=media_id)


async def process_media_job(b: Backends, media_id: str) -> None:
    """Background processing of a long file. Idempotent: does nothing unless ``processing``,
    and its final write checks that again under the row's lock, so a second run (a retry after
    its worker was presumed dead) changes nothing and emits nothing."""
    async with b.read() as session:
        media = await session.get(Media, media_id)
    if media is None or media.state != "processing" or media.original_key is None:
        return
    work = processing.Work(b.spool_dir / f"job-{new_id().lower()}")
    try:
        await asyncio.to_thread(work.dir.mkdir, parents=True, exist_ok=True)
        await b.store.fetch_to_file(media.original_key, work.source)
        try:
            await processing.process_source(b, media, work.source, work.ogg)
            media.state, media.error = "ready", None
        except VoxboxError as exc:
            media.state, media.error = "failed", exc.detail
    finally:
        await asyncio.to_thread(work.remove)
    # A voice note's original is no longer needed once it has its Ogg; a failed file's is of
    # no use to anyone (its messages are withdrawn).
    drop_original = media.kind == "voice" or media.state == "failed"
    async with b.transaction() as session:
        row = await session.get(Media, media_id, with_for_update=True)
        if row is None or row.state != "processing":
            return  # another run got here first: its result stands, and the original with it
        for field in ("state", "error", "ogg_key", "ogg_size", "duration_ms", "waveform"):
            setattr(row, field, getattr(media, field))
        if drop_original:
            row.original_key = None
        # Rows first, then every event at once: the users' locks are taken last, in one go,
        # like every other writer (no lock-order cycle with a concurrent delete or send).
        withdrawn = await _withdraw(session, row) if row.state == "failed" else []
        if row.state == "ready":
            await defer_if_pending(b, session, media_id)
        await log_events(
            session,
            [
                NewEvent(
                    await _audience(session, row),
                    "media.ready" if row.state == "ready" else "media.failed",
                    media_out(row),
                ),
                *withdrawn,
            ],
        )
    if drop_original and media.original_key:
        await delete_unreferenced(b, [media.original_key])


async def resume_processing(b: Backends) -> int:
    """Queue again the processing of media still ``processing``: for the in-process queue at
    start-up, whose jobs died with the process (a durable queue still has them)."""
    return await _requeue_processing(b, queued=set())


async def requeue_lost_processing(b: Backends) -> int:
    """Queue again the processing of media still ``processing`` with no job queued or running
    for them (it failed after its last attempt, or an older voxbox deferred it in process).
    For a durable queue, from housekeeping; a job that keeps failing so runs its attempts
    again once per housekeeping, no more."""
    pending = await b.jobs.pending(PROCESS_MEDIA)
    return 0 if pending is None else await _requeue_processing(b, queued=pending)


async def _requeue_processing(b: Backends, queued: set[str]) -> int:
    """Defer the processing of every ``processing`` media not in ``queued``; how many."""
    async with b.transaction() as session:
        ids = await session.scalars(select(Media.id).where(Media.state == "processing"))
        return await b.jobs.defer_missing(session, PROCESS_MEDIA, ids, queued)


async def _audience(session: AsyncSession, media: Media) -> list[str]:
    """The uploader and the current members of every chat the media was posted in."""
    rows = await session.scalars(
        select(Member.user_id)
        .join(Message, Message.chat_id == Member.chat_id)
        .where(Message.media_id == media.id, Member.left_id.is_(None))
    )
    return sorted({media.uploader_id, *rows})


async def _withdraw(session: AsyncSession, media: Media) -> list[NewEvent]:
    """Withdraw every message that posted ``media``, which failed to process: recipients never
    keep a broken bubble. Each is deleted for everyone (no longer playable, counted or listed);
    returns the ``message.updated`` events (the view has ``withdrawn.reason``, for the sender
    too) for the members of each message's chat. Runs inside the transaction that marks the
    media failed, which logs the events."""
    messages = list(
        await session.scalars(
            select(Message)
            .where(Message.media_id == media.id, Message.deleted_at.is_(None))
            .order_by(Message.id)
        )
    )
    if not messages:
        return []
    now = utcnow()
    for message in messages:
        message.deleted_at, message.text = now, None
    await session.flush()
    views = await load_messages(session, messages)
    return [
        NewEvent(await active_member_ids(session, message.chat_id), "message.updated", view)
        for message, view in zip(messages, views, strict=True)
    ]
