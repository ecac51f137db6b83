"""The job queue on PostgreSQL: procrastinate (see ``queue`` for the contract).

Why procrastinate: it keeps jobs in the database voxbox already runs, so a job can be inserted in
the transaction of the change that needs it (no lost or phantom jobs, no outbox to sweep), and
it brings what a home-made queue gets wrong: ``FOR UPDATE SKIP LOCKED`` claims, per-key locks,
retries with backoff, worker heartbeats, LISTEN/NOTIFY wake-ups and a periodic scheduler that
defers each run once per deployment. The Redis queues (arq, saq, taskiq) would need an outbox to
be transactional with PostgreSQL.

procrastinate talks to PostgreSQL through psycopg 3 with a pool of its own. Deferring in the
caller's transaction goes through the caller's SQLAlchemy session instead: ``_Connector``
accepts one as procrastinate's "external connection" and calls the same SQL function that
procrastinate's own defer calls. Its schema is installed by voxbox's migrations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from typing import Any

import procrastinate
from procrastinate import exceptions, sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.jobs.queue import JobFn, JobOptions, JobQueue, JobRow, PeriodicFn

log = logging.getLogger(__name__)

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue_name AS varchar), CAST(:task_name AS varchar), CAST(:priority AS integer), "
    "CAST(:lock AS text), CAST(:queueing_lock AS text), CAST(:args AS jsonb), "
    "CAST(:scheduled_at AS timestamptz))::procrastinate_job_to_defer_v1])) AS id"
)

# procrastinate's own retry, for a job still running under the worker it was found stalled with
# (its row locked first, so a second caller sees it requeued, or claimed by another worker).
_RERUN = """
SELECT procrastinate_retry_job_v1(id, now(), NULL, NULL, NULL)
  FROM (SELECT id FROM procrastinate_jobs
         WHERE id = %(id)s AND status = 'doing'
           AND worker_id IS NOT DISTINCT FROM %(worker_id)s
           FOR UPDATE) AS still_stalled
"""

_PENDING = """
SELECT lock FROM procrastinate_jobs
 WHERE task_name = %(name)s AND status IN ('todo', 'doing')
"""

_COUNTS = "SELECT status::text AS state, count(*) AS n FROM procrastinate_jobs GROUP BY status"
_NOTABLE = """
SELECT job.id, job.task_name, job.status::text AS state, job.attempts, job.args,
       max(event.at) AS updated_at
  FROM procrastinate_jobs job
  LEFT JOIN procrastinate_events event ON event.job_id = job.id
 WHERE job.status IN ('todo', 'doing', 'failed', 'aborted') OR job.attempts > 1
 GROUP BY job.id
 ORDER BY job.id DESC
 LIMIT %(limit)s
"""


class _Connector(procrastinate.PsycopgConnector):
    """procrastinate's psycopg connector; an ``AsyncSession`` given as the connection of a
    defer inserts the jobs in that session's transaction."""

    async def execute_query_all_async_with_connection(
        self, connection: Any, query: Any, **arguments: Any
    ) -> list[dict[str, Any]]:
        if not isinstance(connection, AsyncSession):
            return await super().execute_query_all_async_with_connection(
                connection, query, **arguments
            )
        if query != sql.queries["defer_jobs"]:
            raise exceptions.ConnectorException("a session only defers jobs")
        rows = []
        for job in arguments["jobs"]:
            row = {**job._asdict(), "args": json.dumps(job.args)}
            rows.append({"id": (await connection.execute(_DEFER, row)).scalar_one()})
        return rows


def libpq_url(database_url: str) -> str:
    """The libpq form of voxbox's SQLAlchemy PostgreSQL URL (psycopg's, not asyncpg's)."""
    url = make_url(database_url)
    query = dict(url.query)
    if "ssl" in query:  # asyncpg spells libpq's sslmode "ssl"
        query["sslmode"] = query.pop("ssl")
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class PostgresJobs(JobQueue):
    def __init__(self, database_url: str, options: JobOptions) -> None:
        super().__init__(options)
        self._app = procrastinate.App(
            connector=_Connector(
                conninfo=libpq_url(database_url),
                min_size=1,
                max_size=options.concurrency + 3,  # jobs, listener, heartbeat, deferrer
            )
        )
        # procrastinate counts retries, and reads 0 of them as "no limit".
        self._retry: procrastinate.RetryStrategy | bool = (
            procrastinate.RetryStrategy(max_attempts=options.max_attempts - 1, exponential_wait=2)
            if options.max_attempts > 1
            else False
        )

    def _register(self, name: str, fn: JobFn) -> None:
        async def run(**args: Any) -> None:
            await fn(**args)

        self._app.task(name=name, retry=self._retry)(run)

    def periodic(self, name: str, cron: str, fn: PeriodicFn) -> None:
        async def run(timestamp: int) -> None:
            await fn()

        task = self._app.task(name=name, queueing_lock=name, lock=name)(run)
        self._app.periodic(cron=cron, periodic_id=name)(task)

    async def defer(self, session: AsyncSession, name: str, **args: Any) -> None:
        task = self._app.tasks[name]
        await task.configure(
            connection=session,
            lock=self._lock_of(name, args),
            priority=self._priorities.get(name, 0),
        ).defer_async(**args)

    async def start(self, *, run_jobs: bool) -> None:
        await self._app.open_async()
        if not run_jobs:
            return
        self.local.spawn("worker", self._work())
        self.local.spawn("rerun-stalled", self._rerun_stalled())

    async def _work(self) -> None:
        """Run procrastinate's worker, and again whenever it stops: it stops by itself when it
        loses the database (its heartbeat fails), and this process must go on running jobs
        once the database is back."""
        lease = self.options.lease_seconds
        pause = 1.0
        while True:
            try:
                await self._app.run_worker_async(
                    name=f"{socket.gethostname()}:{os.getpid()}",
                    concurrency=self.options.concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=lease / 4,
                    stalled_worker_timeout=lease,
                    shutdown_graceful_timeout=self.options.shutdown_seconds,
                )
                log.warning("the job worker stopped; starting it again in %.0f s", pause)
            except Exception:
                log.exception("the job worker failed; starting it again in %.0f s", pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 60.0)

    async def close(self) -> None:
        await super().close()
        await self._app.close_async()

    async def _rerun_stalled(self) -> None:
        """Every quarter lease: run again the jobs of processes silent for a whole lease.
        Every process that runs jobs does this. A job goes back to the queue only while it is
        still the stalled process's (``_RERUN``), so two processes finding it together, or one
        finding it after another requeued it and a third claimed it, never run it twice."""
        manager, connector = self._app.job_manager, self._app.connector
        while True:
            await asyncio.sleep(self.options.lease_seconds / 4)
            try:
                stalled = await manager.get_stalled_jobs(
                    seconds_since_heartbeat=self.options.lease_seconds
                )
                for job in stalled:
                    rerun = await connector.execute_query_all_async(
                        _RERUN, id=job.id, worker_id=job.worker_id
                    )
                    if rerun:
                        log.warning(
                            "job %s %s: its worker stopped; it runs again", job.id, job.task_name
                        )
                await manager.prune_stalled_workers(self.options.lease_seconds)
            except exceptions.ConnectorException:
                log.exception("looking for stalled jobs failed")

    async def list_jobs(self, limit: int) -> tuple[dict[str, int], list[JobRow]]:
        connector = self._app.connector
        counts = {
            row["state"]: row["n"] for row in await connector.execute_query_all_async(_COUNTS)
        }
        rows = await connector.execute_query_all_async(_NOTABLE, limit=limit)
        return counts, [
            JobRow(
                id=row["id"],
                task=row["task_name"],
                state=row["state"],
                attempts=row["attempts"],
                args=row["args"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    async def prune(self, older_than_hours: int) -> None:
        await self._app.job_manager.delete_old_jobs(
            older_than_hours, include_failed=True, include_cancelled=True, include_aborted=True
        )

    async def pending(self, name: str) -> set[str] | None:
        rows = await self._app.connector.execute_query_all_async(_PENDING, name=name)
        prefix = f"{name}:"
        return {row["lock"].removeprefix(prefix) for row in rows if row["lock"]}
