"""A user's long tasks (backups, restores, imports): started by a request, run, polled.

A task is ``running`` until its work ends it ``ready`` (with a result) or ``failed`` (with a
message the user can act on). ``progress`` (0 to 1) is updated as it goes. A user runs one task
of a kind at a time.

A task runs in the process that took its request, not in the job queue: a backup or restore
holds the user's passphrase, which is never written down, and a restore or import reads the
file that request spooled to that machine's disk. It heartbeats while it runs; one silent for
``jobs.lease_seconds`` died with its process and is failed when next looked at (at start-up for
the embedded server, whose one process is the only one). The user starts it again, which is safe
since every task is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from voxbox.core.backends import Backends
from voxbox.core.errors import Conflict, NotFound, VoxboxError
from voxbox.core.principal import Principal
from voxbox.core.views import Timestamp
from voxbox.db.models import Task
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

log = logging.getLogger(__name__)

TaskKind = Literal["backup", "restore", "import"]


class SkippedOut(BaseModel):
    line: int
    reason: str


class TaskOut(BaseModel):
    id: str
    kind: TaskKind
    state: Literal["running", "ready", "failed"]
    progress: float = Field(ge=0, le=1)
    created_at: Timestamp
    finished_at: Timestamp | None = None
    error: str | None = None
    size: int | None = None  # a backup's file, in bytes
    chat_id: str | None = None  # an import's chat
    counts: dict[str, int] = Field(default_factory=dict)
    skipped: list[SkippedOut] = Field(default_factory=list)


def task_out(task: Task) -> TaskOut:
    result: dict[str, Any] = json.loads(task.result or "{}")
    return TaskOut(
        id=task.id,
        kind=task.kind,
        state=task.state,
        progress=1.0 if task.state == "ready" else result.get("progress", 0.0),
        created_at=task.created_at,
        finished_at=task.finished_at,
        error=task.error,
        size=task.size,
        chat_id=result.get("chat_id"),
        counts=result.get("counts", {}),
        skipped=result.get("skipped", []),
    )


_NOUNS = {"backup": "A backup", "restore": "A restore", "import": "An import"}


ABANDONED = "The server running this stopped; start it again."


async def start_task(b: Backends, user: Principal, kind: TaskKind) -> Task:
    """Record a new running task; 409 while another of this kind runs for the user."""
    async with b.transaction() as session:
        running = await session.scalar(
            select(Task).where(Task.user_id == user.id, Task.kind == kind, Task.state == "running")
        )
        if running is not None and _silent(b, running):
            _abandon(running)
        elif running is not None:
            raise Conflict(f"{_NOUNS[kind]} is already running ({running.id}); wait for it to end.")
        now = utcnow()
        task = Task(
            id=new_id(),
            user_id=user.id,
            kind=kind,
            state="running",
            created_at=now,
            heartbeat_at=now,
        )
        session.add(task)
    return task


def _silent(b: Backends, task: Task) -> bool:
    """Whether ``task`` is running without a heartbeat for a lease: its process died."""
    lease = timedelta(seconds=b.settings.jobs.lease_seconds)
    return task.state == "running" and (task.heartbeat_at or task.created_at) < utcnow() - lease


def _abandon(task: Task) -> None:
    task.state, task.error, task.finished_at = "failed", ABANDONED, utcnow()


Progress = Callable[[float], Awaitable[None]]


def run_task(
    b: Backends,
    task_id: str,
    work: Callable[[Progress], Awaitable[dict[str, Any]]],
) -> None:
    """Run ``work`` in this process (see the module's docstring); what it returns is the task's
    result. A ``VoxboxError`` fails the task with its message; anything else fails it with a
    generic one (and is logged)."""

    async def progress(fraction: float) -> None:
        await _update(b, task_id, result={"progress": round(min(max(fraction, 0.0), 1.0), 3)})

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(b.settings.jobs.lease_seconds / 4)
            with contextlib.suppress(Exception):  # a missed beat is not the task's failure
                await _update(b, task_id, heartbeat_at=utcnow())

    async def job() -> None:
        beating = asyncio.create_task(heartbeat())
        try:
            result = await work(progress)
        except VoxboxError as exc:
            await _finish(b, task_id, "failed", error=exc.detail)
        except Exception:
            log.exception("task %s failed", task_id)
            await _finish(b, task_id, "failed", error="It failed on the server; try again.")
        else:
            await _finish(b, task_id, "ready", result=result)
        finally:
            beating.cancel()

    b.jobs.local.submit(f"task:{task_id}", job)


async def _update(b: Backends, task_id: str, **values: Any) -> None:
    """Change a running task. One failed meanwhile (abandoned: its heartbeat was late) stays
    failed: its user may have started another already."""
    if "result" in values:
        values["result"] = json.dumps(values["result"])
    async with b.transaction() as session:
        await session.execute(
            update(Task).where(Task.id == task_id, Task.state == "running").values(**values)
        )


async def _finish(
    b: Backends,
    task_id: str,
    state: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"state": state, "error": error, "finished_at": utcnow()}
    if result is not None:
        values["size"] = result.pop("size", None)
        values["blob_key"] = result.pop("blob_key", None)
        values["result"] = result
    await _update(b, task_id, **values)


async def get_task(b: Backends, user: Principal, kind: TaskKind, task_id: str) -> Task:
    async with b.read() as session:
        task = await session.get(Task, task_id)
    if task is None or task.user_id != user.id or task.kind != kind:
        raise NotFound("No such task.")
    if _silent(b, task):
        async with b.transaction() as session:
            row = await session.get(Task, task_id, with_for_update=True)
            if row is not None:
                if _silent(b, row):
                    _abandon(row)
                task = row
    return task


async def fail_interrupted_tasks(b: Backends, before: datetime) -> int:
    """At the start-up of the embedded server (one process): tasks still running from before
    the restart will never finish."""
    async with b.transaction() as session:
        result = await session.execute(
            update(Task)
            .where(Task.state == "running", Task.created_at < before)
            .values(
                state="failed",
                error=ABANDONED,
                finished_at=utcnow(),
            )
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
