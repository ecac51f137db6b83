"""Workers that live as long as the process: they gather what many requests and sockets hand
them and write it in rounds, or tidy up on a schedule. Capability modules stay free of them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from voxbox import age
from voxbox.core import backup, media, server_backup, transcripts, uploads
from voxbox.core.backends import Backends
from voxbox.core.principal import Principal
from voxbox.core.receipts import ack_many
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)


class AckWriter:
    """Collects the acks of every socket in this process and writes them in rounds.

    Each round is one ``ack_many`` transaction for everything that arrived meanwhile. An ack
    covering only direct-chat messages is written at once (a lone ack is never delayed). An ack
    covering a group message is held for the batch window (``limits.receipt_batch_ms``), opened
    by the first such ack: what the members of a group ack within it is written in one round at
    its end, so the sender gets one delivered event per message, naming them all, instead of
    one per member.
    """

    def __init__(self, b: Backends) -> None:
        self._b = b
        self._window = b.settings.limits.receipt_batch_ms / 1000
        self._pending: dict[str, tuple[Principal, int]] = {}
        self._held: dict[str, tuple[Principal, int]] = {}
        self._window_ends: float | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ack-writer")

    def offer(self, user: Principal, seq: int) -> None:
        if user.id in self._held:  # waits for the window anyway
            _keep_highest(self._held, user, seq)
        elif _keep_highest(self._pending, user, seq):
            self._wake.set()

    async def close(self) -> None:
        """Write what is pending or held, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not (self._closing and not self._pending and not self._held):
            if not self._pending and not self._closing:
                timeout = None if self._window_ends is None else self._window_ends - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            started = loop.time()
            batch, self._pending = self._pending, {}
            released: set[str] = set()
            if self._closing or (self._window_ends is not None and started >= self._window_ends):
                # The window is over: its held acks go now, with whatever just came in.
                released = set(self._held)
                for user, seq in self._held.values():
                    _keep_highest(batch, user, seq)
                self._held, self._window_ends = {}, None
            else:
                for uid in [uid for uid in batch if uid in self._held]:
                    _keep_highest(self._held, *batch.pop(uid))
            may_hold = set() if self._closing or self._window <= 0 else set(batch) - released
            if not batch:
                continue
            try:
                held = await ack_many(self._b, batch, may_hold=may_hold)
            except Exception:
                log.exception("writing %d acks failed", len(batch))
                continue
            for uid in held:
                _keep_highest(self._held, *batch[uid])
            if held and self._window_ends is None:
                self._window_ends = started + self._window


def _keep_highest(acks: dict[str, tuple[Principal, int]], user: Principal, seq: int) -> bool:
    """Record the user's ack unless a higher one is there; whether it was recorded."""
    current = acks.get(user.id)
    if current is not None and current[1] >= seq:
        return False
    acks[user.id] = (user, seq)
    return True


def register_jobs(b: Backends) -> None:
    """Every background job, periodic ones included, by name: before ``b.start(run_jobs=...)``,
    in every process that defers or runs jobs."""
    b.jobs.task(media.PROCESS_MEDIA, functools.partial(media.process_media_job, b), lock="media_id")
    b.jobs.task(uploads.DELETE_BLOBS, functools.partial(uploads.delete_blobs, b))
    # Transcripts wait behind the rest: a backlog of them (a restored backup's voice notes)
    # must not keep a new upload processing.
    b.jobs.task(
        transcripts.TRANSCRIBE,
        functools.partial(transcripts.transcribe_job, b),
        lock="media_id",
        priority=-1,
    )
    b.jobs.periodic(
        "housekeeping", b.settings.jobs.housekeeping_cron, functools.partial(housekeeping, b)
    )
    backups = b.settings.backup
    if backups.daily_at and backups.to and backups.recipient:
        hour, minute = (int(part) for part in backups.daily_at.split(":"))
        b.jobs.periodic(
            "server_backup", f"{minute} {hour} * * *", functools.partial(server_backup_job, b)
        )


async def housekeeping(b: Backends) -> None:
    """Hourly, once for the deployment: reopen drafts whose finishing died, queue again media
    and transcripts whose job is gone, expire drafts and old backups, delete blobs nothing refers
    to, forget old finished jobs."""
    lease = timedelta(seconds=b.settings.limits.finish_lease_seconds)
    await uploads.reopen_stuck_uploads(b, utcnow() - lease)
    await media.requeue_lost_processing(b)
    await transcripts.requeue_lost_transcripts(b)
    await uploads.expire_uploads(b)
    await backup.expire_backups(b)
    await media.collect_garbage(b)
    await b.jobs.prune(b.settings.jobs.keep_finished_hours)


LOCAL_CHORES_SECONDS = 3600


def schedule_local_chores(b: Backends) -> None:
    """Hourly, in every process (each machine has its own disk): sweep scratch files left by
    a crash, set disk space aside again."""

    async def chores() -> None:
        while True:
            await asyncio.sleep(LOCAL_CHORES_SECONDS)
            try:
                await asyncio.to_thread(sweep_spool, b.spool_dir)
                await asyncio.to_thread(b.reserve.ensure)
            except Exception:
                log.exception("sweeping scratch files or setting disk space aside failed")

    b.jobs.local.spawn("local-chores", chores())


def sweep_spool(spool_dir: Path, older_than_seconds: float = 3600) -> int:
    """Remove scratch files left by a crash (anything older than an hour); returns how many."""

    cutoff = time.time() - older_than_seconds
    removed = 0
    for entry in spool_dir.iterdir() if spool_dir.exists() else []:
        if entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


async def server_backup_job(b: Backends) -> None:
    """The daily server backup of the ``backup.daily_at`` setting."""
    settings = b.settings.backup
    recipient = age.X25519Recipient.parse(settings.recipient or "")
    dest = server_backup.destination(settings.to or "")
    try:
        done = await server_backup.back_up(b.settings, b.store, dest, recipient, keep=settings.keep)
        log.info(
            "server backup %s: %d media files, %d new, %.1f s",
            done.name, done.blobs, done.blobs_sent, done.seconds,
        )  # fmt: skip
    finally:
        await dest.close()
