"""The few things every use case needs, built once by the app (or a CLI command)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.config import Settings
from voxbox.core.disk import DiskReserve
from voxbox.core.events import PENDING_ENVELOPES
from voxbox.core.tokens import TokenCache
from voxbox.core.writer import WriteQueue, publish
from voxbox.db.engine import Database
from voxbox.events.bus import EventBus, make_bus
from voxbox.jobs import JobQueue, make_job_queue
from voxbox.jobs.queue import JobOptions
from voxbox.media import AnalyzerCache, MediaLimits
from voxbox.ratelimit import RateLimiter, make_rate_limiter
from voxbox.storage import BlobStore, make_blob_store
from voxbox.transcriber import Transcriber


@dataclass(frozen=True)
class Backends:
    settings: Settings
    db: Database
    bus: EventBus
    limiter: RateLimiter
    store: BlobStore
    jobs: JobQueue  # durable background work (and this process's own, in ``jobs.local``)
    recordings: AnalyzerCache  # voice drafts analysed as they stream in (see core/uploads)
    tokens: TokenCache
    writes: WriteQueue  # the batched write path (core/writer.py)
    reserve: DiskReserve  # space held for the database on a full disk (core/disk.py)
    transcriber: Transcriber  # speech to text, in processes of its own (core/transcripts.py)

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        db = Database(settings.effective_database_url)
        bus = make_bus(settings.redis_url, settings.redis_prefix)
        tokens = TokenCache()
        bus.on_broadcast(tokens.on_broadcast)  # logouts on other workers
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            writes=WriteQueue(
                db,
                bus,
                max_batch=settings.limits.write_batch_max,
                writers=1 if db.is_sqlite else settings.limits.write_batches_in_flight,
            ),
            limiter=make_rate_limiter(settings.redis_url, settings.redis_prefix),
            store=make_blob_store(settings.storage_url, settings.data_dir),
            jobs=make_job_queue(
                settings.effective_database_url,
                JobOptions(
                    concurrency=settings.jobs.concurrency,
                    lease_seconds=settings.jobs.lease_seconds,
                    max_attempts=settings.jobs.max_attempts,
                    shutdown_seconds=settings.jobs.shutdown_seconds,
                ),
            ),
            reserve=DiskReserve(
                settings.data_dir / "disk-reserve",
                settings.limits.disk_reserve_bytes,
                settings.limits.min_free_disk_bytes,
            ),
            tokens=tokens,
            transcriber=Transcriber(settings.transcribe),
            recordings=AnalyzerCache(
                MediaLimits(
                    max_duration_ms=settings.limits.voice_max_seconds * 1000,
                    max_decode_seconds=settings.limits.decode_max_seconds,
                )
            ),
        )

    async def start(self, *, run_jobs: bool = False) -> None:
        """Connect everything; with ``run_jobs``, this process also runs background jobs (the
        job functions must be registered first: ``core.workers.register_jobs``)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.reserve.ensure)
        await self.db.migrate()
        self.db.start()
        await self.bus.start()
        self.writes.start()
        await self.jobs.start(run_jobs=run_jobs)

    @property
    def spool_dir(self) -> Path:
        """Local scratch space for request bodies and media processing."""
        return self.settings.data_dir / "tmp"

    async def close(self) -> None:
        await self.writes.close()
        await self.jobs.close()
        self.transcriber.close()
        await self.store.close()
        await self.bus.close()
        await self.limiter.close()
        await self.db.dispose()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction. Events logged in it are published after it commits, never before.

        For writes off the hot path; posts go through ``writes`` (the batched write queue).
        """
        async with self.db.write_gate(), self.db.sessions() as session:
            async with session.begin():
                yield session
            envelopes = session.info.pop(PENDING_ENVELOPES, [])
        await publish(self.bus, envelopes)

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A session for reads; nothing is committed."""
        return self.db.read()
