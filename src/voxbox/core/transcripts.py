"""Transcripts of voice and audio messages.

A transcript is requested when a message posts a media (never for a view-once message, nor for a
sender who turned transcription off), made by the ``transcribe`` job once the media is ready, and
then shown on every message posting that media (``message.updated`` to their chats) and indexed
for search. The engine runs in processes of its own (``voxbox.transcriber``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import current_viewers, may_post_media
from voxbox.core.backends import Backends
from voxbox.core.events import NewEvent, log_events
from voxbox.core.views import load_messages
from voxbox.db.models import Media, Message, SearchDoc, Transcript, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.ids import new_id
from voxbox.media import InvalidMedia
from voxbox.media import transcribe as engine
from voxbox.storage import BlobNotFound
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)

TRANSCRIBE = "transcribe"


async def request_transcripts(b: Backends, poster: str, media_ids: Collection[str]) -> None:
    """``poster`` is about to post these media (none as view-once): queue their transcripts
    (see ``do_request_transcripts``). Its own transaction, before the post, so the message
    shows ``pending`` from the start; none at all when there is nothing to ask (a read)."""
    if b.settings.transcribe.engine == "off" or not media_ids:
        return
    async with b.read() as session:
        if not await session.scalar(_wanted(poster, media_ids).limit(1)):
            return
    async with b.transaction() as session:
        await do_request_transcripts(b, session, poster, media_ids)


async def do_request_transcripts(
    b: Backends, session: AsyncSession, poster: str, media_ids: Collection[str]
) -> None:
    """In ``session``'s transaction: a pending transcript, and its job once the media is
    ready, for each media ``poster`` may post that has none, unless the engine is off or its
    uploader turned transcription off. A view-once note someone received is never one a
    caller may post, so asking for it by id does nothing."""
    if b.settings.transcribe.engine == "off" or not media_ids:
        return
    # The media's row is read under a share lock: its processing job marks it ready under an
    # update lock, so either this sees it ready, or that job sees this pending transcript.
    wanted = list(
        (
            await session.execute(
                _wanted(poster, media_ids)
                .add_columns(Media.state)
                .with_for_update(read=True, of=Media)
            )
        ).tuples()
    )
    if not wanted:
        return
    now = utcnow()
    # Another send of the same media may request it at once: the first row stands.
    inserted = await session.scalars(
        insert_ignoring_conflicts(session, Transcript).returning(Transcript.media_id),
        [{"media_id": media_id, "state": "pending", "updated_at": now} for media_id, _ in wanted],
    )
    new = set(inserted)
    for media_id, state in wanted:
        # Still processing: process_media defers it when the media is ready.
        if media_id in new and state == "ready":
            await b.jobs.defer(session, TRANSCRIBE, media_id=media_id)


def _wanted(poster: str, media_ids: Collection[str]) -> Select[str]:
    return (
        select(Media.id)
        .join(User, User.id == Media.uploader_id)
        .outerjoin(Transcript, Transcript.media_id == Media.id)
        .where(
            Media.id.in_(set(media_ids)),
            may_post_media(poster),
            User.transcribe.is_(True),
            Transcript.media_id.is_(None),
        )
    )


async def defer_if_pending(b: Backends, session: AsyncSession, media_id: str) -> None:
    """The media just became ready (in ``session``'s transaction): queue its transcript if one
    is waiting for it."""
    row = await session.get(Transcript, media_id)
    if row is not None and row.state == "pending":
        await b.jobs.defer(session, TRANSCRIBE, media_id=media_id)


async def transcribe_job(b: Backends, media_id: str) -> None:
    """Make the transcript of a ready media. Every outcome but an outage of the blob store or
    database is final: an engine that cannot start or crashes, audio it cannot read, a missing
    file or one too long is ``failed`` with the reason, never retried (no storm of jobs failing
    alike). A second run finds it no longer pending. With the engine turned off since it was
    asked for, the transcript is dropped (``off``)."""
    async with b.read() as session:
        row = await session.get(Transcript, media_id)
        media = await session.get(Media, media_id)
    if row is None or row.state != "pending" or media is None or media.state == "processing":
        return
    if b.settings.transcribe.engine == "off":
        await _drop_pending(b, media_id)
        return
    most = b.settings.transcribe.max_seconds
    result: engine.Transcript | None = None
    error: str | None = None
    if media.state != "ready" or media.ogg_key is None:
        error = "The audio could not be processed."
    elif (media.duration_ms or 0) > most * 1000:
        error = f"Longer than {_minutes(most)}: not transcribed."
    else:
        path = b.spool_dir / f"transcribe-{new_id().lower()}.ogg"
        try:
            await b.store.fetch_to_file(media.ogg_key, path)
            result = await b.transcriber.run(path)
        except BlobNotFound:
            error = "The audio is missing."
        except (engine.EngineFailed, InvalidMedia) as exc:
            error = str(exc)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        if error is not None:
            log.warning("transcribing media %s failed: %s", media_id, error)
    await _finish(b, media_id, result, error)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


async def _finish(
    b: Backends, media_id: str, result: engine.Transcript | None, error: str | None
) -> None:
    async with b.transaction() as session:
        row = await session.get(Transcript, media_id, with_for_update=True)
        if row is None or row.state != "pending":
            return  # another run got here first
        row.updated_at = utcnow()
        if result is None:
            row.state, row.error = "failed", error
        else:
            row.state, row.text, row.language = "ready", result.text, result.language
            row.words = json.dumps(
                [{"w": w.w, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in result.words]
            )
        messages = list(
            await session.scalars(
                select(Message)
                .where(
                    Message.media_id == media_id,
                    Message.deleted_at.is_(None),
                    Message.view_once.is_(False),
                )
                .order_by(Message.id)
            )
        )
        if result is not None and result.text and messages:
            await session.execute(
                insert(SearchDoc),
                [{"message_id": m.id, "chat_id": m.chat_id, "body": result.text} for m in messages],
            )
        await session.flush()
        views = await load_messages(session, messages)
        await log_events(
            session,
            [
                NewEvent(await current_viewers(session, m), "message.updated", view)
                for m, view in zip(messages, views, strict=True)
            ],
        )


async def resume_transcripts(b: Backends) -> int:
    """Queue again the pending transcripts of ready media: for the in-process queue at start-up,
    whose jobs died with the process. With the engine turned off, they are dropped (``off``)
    instead of waiting for good."""
    if b.settings.transcribe.engine == "off":
        await _drop_pending(b)
        return 0
    return await _requeue(b, queued=set())


async def requeue_lost_transcripts(b: Backends) -> int:
    """Queue again pending transcripts with no job queued or running (a crash between the
    request and its post, a job that failed for good): from housekeeping, durable queue."""
    if b.settings.transcribe.engine == "off":
        return 0
    pending = await b.jobs.pending(TRANSCRIBE)
    return 0 if pending is None else await _requeue(b, queued=pending)


async def _drop_pending(b: Backends, media_id: str | None = None) -> None:
    """Forget pending transcripts (of one media, or all): the engine is off."""
    async with b.transaction() as session:
        drop = delete(Transcript).where(Transcript.state == "pending")
        if media_id is not None:
            drop = drop.where(Transcript.media_id == media_id)
        await session.execute(drop)


async def _requeue(b: Backends, queued: set[str]) -> int:
    """Defer every pending transcript of a media no longer processing that is not in
    ``queued``; how many."""
    async with b.transaction() as session:
        ids = await session.scalars(
            select(Transcript.media_id)
            .join(Media, Media.id == Transcript.media_id)
            .where(Transcript.state == "pending", Media.state != "processing")
        )
        return await b.jobs.defer_missing(session, TRANSCRIBE, ids, queued)
