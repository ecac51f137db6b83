"""The job queue's contract, on both backends: a job exists only if its transaction committed,
a failing job is retried, and a second run of a media's job changes nothing and emits nothing."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.conftest import MakeUsers
from support.audio import wav_bytes
from voxbox.core import transcripts
from voxbox.core.backends import Backends
from voxbox.core.media import PROCESS_MEDIA, process_media_job, requeue_lost_processing
from voxbox.core.principal import Principal
from voxbox.db.models import Event, Media, Transcript
from voxbox.ids import new_id
from voxbox.storage import blob_key
from voxbox.timeutil import utcnow

pytestmark = pytest.mark.run_jobs


class Boom(Exception):
    pass


async def test_a_job_runs_only_if_its_transaction_commits(b: Backends) -> None:
    ran: list[int] = []
    done = asyncio.Event()

    async def note(n: int) -> None:
        ran.append(n)
        done.set()

    b.jobs.task("note", note)
    with pytest.raises(Boom):
        async with b.transaction() as session:
            await b.jobs.defer(session, "note", n=1)
            raise Boom
    async with b.transaction() as session:
        await b.jobs.defer(session, "note", n=2)
    await asyncio.wait_for(done.wait(), 20)
    assert ran == [2]


async def test_a_failing_job_is_retried(b: Backends) -> None:
    runs: list[str] = []
    done = asyncio.Event()

    async def flaky(word: str) -> None:
        runs.append(word)
        if len(runs) == 1:
            raise Boom("the first run fails")
        done.set()

    b.jobs.task("flaky", flaky)
    async with b.transaction() as session:
        await b.jobs.defer(session, "flaky", word="again")
    await asyncio.wait_for(done.wait(), 30)
    assert runs == ["again", "again"]


async def processing_media(b: Backends, uploader: Principal, tmp_path: Path) -> Media:
    """A 3 s WAV stored as a media left ``processing`` (as a long upload is)."""
    wav = tmp_path / "long.wav"
    wav.write_bytes(wav_bytes(3))
    sha = hashlib.sha256(wav.read_bytes()).hexdigest()
    await b.store.put_file(blob_key(sha), wav)
    media = Media(
        id=new_id(),
        uploader_id=uploader.id,
        kind="audio",
        state="processing",
        filename="long.wav",
        source_sha256=sha,
        source_size=wav.stat().st_size,
        source_content_type="audio/wav",
        original_key=blob_key(sha),
        created_at=utcnow(),
    )
    async with b.transaction() as session:
        session.add(media)
    return media


async def test_two_runs_of_one_media_job_emit_media_ready_once(
    b: Backends, make_users: MakeUsers, tmp_path: Path
) -> None:
    """As when a worker presumed dead was only slow: both runs process, one result stands."""
    (alice,) = await make_users("jobs", 1)
    media = await processing_media(b, alice, tmp_path)

    await asyncio.gather(process_media_job(b, media.id), process_media_job(b, media.id))

    async with b.read() as session:
        row = await session.get(Media, media.id)
    assert row is not None and row.state == "ready"
    assert row.duration_ms is not None and abs(row.duration_ms - 3000) <= 60
    assert await ready_events(b, alice) == 1


async def test_media_whose_job_is_gone_are_queued_again(
    b: Backends, make_users: MakeUsers, tmp_path: Path, backend: str
) -> None:
    """A job that failed for good (or an older voxbox's in-process one) leaves its media
    processing; housekeeping's step queues it again where the queue keeps its jobs."""
    b.jobs.task(PROCESS_MEDIA, functools.partial(process_media_job, b), lock="media_id")
    (alice,) = await make_users("lost", 1)
    media = await processing_media(b, alice, tmp_path)  # no job deferred
    requeued = await requeue_lost_processing(b)
    if backend == "sqlite":  # nothing kept to compare with: start-up re-queues instead
        assert requeued == 0
        return
    assert requeued == 1
    async with asyncio.timeout(30):  # the database has no event to await
        while await ready_events(b, alice) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert await requeue_lost_processing(b) == 0  # ready now: nothing is lost
    async with b.read() as session:
        row = await session.get(Media, media.id)
    assert row is not None and row.state == "ready"


async def ready_events(b: Backends, user: Principal) -> int:
    async with b.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.user_id == user.id, Event.type == "media.ready")
            )
            or 0
        )


async def test_pending_transcripts_are_dropped_when_the_engine_is_off(
    b: Backends, make_users: MakeUsers, tmp_path: Path
) -> None:
    """A server started with transcription off forgets what was waiting for it: those messages
    say ``off``, not "Transcribing…" for good."""
    (alice,) = await make_users("off", 1)
    media = await processing_media(b, alice, tmp_path)
    async with b.transaction() as session:
        session.add(Transcript(media_id=media.id, state="pending", updated_at=utcnow()))
    assert b.settings.transcribe.engine == "off"  # the core tests' setting
    assert await transcripts.resume_transcripts(b) == 0
    async with b.read() as session:
        assert await session.get(Transcript, media.id) is None
