"""JobQueue: named background jobs, deferred in the transaction that needs them.

A job is a registered async function called with JSON arguments (ids, never rows: it reloads
what it needs, and is idempotent, so a second run changes nothing). Two implementations, one
contract:

- ``PostgresJobs`` (PostgreSQL): procrastinate. A job is a row inserted in the caller's own
  transaction (it exists if and only if the change that needs it committed); any process that
  runs jobs (``voxbox serve``, ``voxbox worker``) claims it, exactly one at a time, and
  heartbeats while it runs. A process that stops heartbeating for ``jobs.lease_seconds`` is
  presumed dead and its jobs run again elsewhere. Failures are retried with backoff. Periodic
  jobs are deferred once per period for the whole deployment (procrastinate's periodic
  deferrer, deduplicated in the database).
- ``InProcessJobs`` (the embedded SQLite mode, one process): the same functions run in this
  process after the transaction commits, retried with backoff. What a crash or a stop interrupts
  is lost with the process: media still processing are queued again at start-up (see ``app``),
  and blobs a ``delete_blobs`` job did not delete are collected by housekeeping. One process
  defers each job once, so locks are moot.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.jobs.runner import LocalRunner
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)

JobFn = Callable[..., Awaitable[None]]  # called with the job's arguments as keywords
PeriodicFn = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class JobOptions:
    concurrency: int  # jobs this process runs at once
    lease_seconds: float  # silence after which a job's process is presumed dead
    max_attempts: int  # runs of a failing job, the first included
    shutdown_seconds: float  # how long a stopping process lets its jobs finish


@dataclass(frozen=True)
class JobRow:
    """One job, as ``voxbox admin jobs`` lists it."""

    id: int
    task: str
    state: str  # todo, doing, succeeded, failed, cancelled, aborted
    attempts: int  # runs that ended (a job that ran once and succeeded has 1)
    args: dict[str, Any]
    updated_at: datetime | None


class JobQueue(ABC):
    def __init__(self, options: JobOptions) -> None:
        self.options = options
        self.local = LocalRunner()  # work that cannot leave this process
        self._locks: dict[str, str] = {}
        self._priorities: dict[str, int] = {}

    def task(self, name: str, fn: JobFn, *, lock: str | None = None, priority: int = 0) -> None:
        """Register ``fn`` as the job ``name``. Jobs whose argument ``lock`` has the same value
        never run at the same time anywhere in the deployment. Of jobs waiting for a slot,
        those of a higher ``priority`` go first (long, deferrable work takes a lower one)."""
        if lock is not None:
            self._locks[name] = lock
        self._priorities[name] = priority
        self._register(name, fn)

    def _lock_of(self, name: str, args: dict[str, Any]) -> str | None:
        lock = self._locks.get(name)
        return None if lock is None else f"{name}:{args[lock]}"

    @abstractmethod
    def _register(self, name: str, fn: JobFn) -> None: ...

    @abstractmethod
    def periodic(self, name: str, cron: str, fn: PeriodicFn) -> None:
        """Run ``fn`` at the times of ``cron`` (UTC), once each time for the deployment."""

    @abstractmethod
    async def defer(self, session: AsyncSession, name: str, **args: Any) -> None:
        """Queue the job ``name`` as part of ``session``'s transaction: it runs after the
        commit, and never if the transaction rolls back."""

    @abstractmethod
    async def start(self, *, run_jobs: bool) -> None:
        """Connect; with ``run_jobs``, also claim and run jobs (and periodic ones) here."""

    async def close(self) -> None:
        """Stop. PostgreSQL: running jobs get ``shutdown_seconds`` to end, then are left to run
        again elsewhere. In-process: they are cancelled."""
        await self.local.close()

    @abstractmethod
    async def prune(self, older_than_hours: int) -> None:
        """Forget jobs that ended (succeeded, failed for good, cancelled) longer ago than that."""

    async def defer_missing(
        self, session: AsyncSession, name: str, keys: Iterable[str], queued: Collection[str]
    ) -> int:
        """Queue ``name`` again, in ``session``'s transaction, for each of ``keys`` (values of
        its ``lock`` argument) not in ``queued`` (see ``pending``); how many."""
        missing = [key for key in keys if key not in queued]
        for key in missing:
            await self.defer(session, name, **{self._locks[name]: key})
        return len(missing)

    async def pending(self, name: str) -> set[str] | None:
        """The ``lock`` argument of every job ``name`` queued or running, or None when this
        queue cannot tell (it keeps nothing)."""
        return None


class InProcessJobs(JobQueue):
    _PENDING = "voxbox_pending_jobs"

    def __init__(self, options: JobOptions) -> None:
        super().__init__(options)
        self._tasks: dict[str, JobFn] = {}
        self._periodic: list[tuple[str, str, PeriodicFn]] = []
        self._slots = _Slots(options.concurrency)

    def _register(self, name: str, fn: JobFn) -> None:
        self._tasks[name] = fn

    def periodic(self, name: str, cron: str, fn: PeriodicFn) -> None:
        croniter(cron)  # a bad expression fails here, at start-up
        self._periodic.append((name, cron, fn))

    async def defer(self, session: AsyncSession, name: str, **args: Any) -> None:
        if name not in self._tasks:
            raise KeyError(f"no job named {name!r}")
        sync = session.sync_session
        if self._PENDING not in sync.info:
            event.listen(sync, "after_commit", self._committed)
            event.listen(sync, "after_rollback", self._rolled_back)
        sync.info.setdefault(self._PENDING, []).append((name, args))

    def _committed(self, sync_session: Any) -> None:
        for name, args in sync_session.info.pop(self._PENDING, []):
            self._submit(name, args)

    def _rolled_back(self, sync_session: Any) -> None:
        sync_session.info.pop(self._PENDING, None)

    def _submit(self, name: str, args: dict[str, Any]) -> None:
        self.local.spawn(name, self._run(name, args))

    async def _run(self, name: str, args: dict[str, Any]) -> None:
        for attempt in range(self.options.max_attempts):
            async with self._slots.take(self._priorities.get(name, 0)):
                try:
                    await self._tasks[name](**args)
                    return
                except Exception:
                    log.exception("job %s %s failed (run %d)", name, args, attempt + 1)
            if attempt + 1 < self.options.max_attempts:
                await asyncio.sleep(_backoff(attempt))

    async def prune(self, older_than_hours: int) -> None:
        pass  # a job is forgotten as it ends; so ``pending`` cannot tell

    async def start(self, *, run_jobs: bool) -> None:
        # Deferred jobs run here whatever ``run_jobs`` says: there is no other process.
        if not run_jobs:
            return
        for name, cron, fn in self._periodic:
            self.local.spawn(name, _every(name, cron, fn))


async def _every(name: str, cron: str, fn: PeriodicFn) -> None:
    times = croniter(cron, utcnow())
    while True:
        due: datetime = times.get_next(datetime)
        await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()))
        try:
            await fn()
        except Exception:
            log.exception("periodic job %s failed", name)


class _Slots:
    """``count`` job slots, handed out best priority first, then first come."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def take(self, priority: int) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (-priority, next(self._arrivals), turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # handed the slot just as it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


def _backoff(attempt: int) -> float:
    """Seconds before run ``attempt + 2`` of a failed job: 2, 4, 8 ... up to 5 minutes."""
    return min(2.0 ** (attempt + 1), 300.0) * random.uniform(0.8, 1.2)


def make_job_queue(database_url: str, options: JobOptions) -> JobQueue:
    if database_url.startswith("sqlite"):
        return InProcessJobs(options)
    from voxbox.jobs.postgres import PostgresJobs  # psycopg: only when scaled out

    return PostgresJobs(database_url, options)
