"""A user's long tasks (backups, restores, imports): started by a request, run as jobs, polled.

A task is ``running`` until its job ends it ``ready`` (with a result) or ``failed`` (with a
message the user can act on). ``progress`` (0 to 1) is updated as the job goes. A user runs one
task of a kind at a time. Tasks a restart interrupted are failed at start-up: the user starts
them again, which is safe since every task is idempotent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
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


async def start_task(b: Backends, user: Principal, kind: TaskKind) -> Task:
    """Record a new running task; 409 while another of this kind runs for the user."""
    async with b.transaction() as session:
        running = await session.scalar(
            select(Task.id).where(
                Task.user_id == user.id, Task.kind == kind, Task.state == "running"
            )
        )
        if running is not None:
            raise Conflict(f"{_NOUNS[kind]} is already running ({running}); wait for it to end.")
        task = Task(id=new_id(), user_id=user.id, kind=kind, state="running", created_at=utcnow())
        session.add(task)
    return task


Progress = Callable[[float], Awaitable[None]]


def run_task(
    b: Backends,
    task_id: str,
    work: Callable[[Progress], Awaitable[dict[str, Any]]],
) -> None:
    """Run ``work`` as a job; what it returns is the task's result. A ``VoxboxError`` fails the
    task with its message; anything else fails it with a generic one (and is logged)."""

    async def progress(fraction: float) -> None:
        await _update(b, task_id, result={"progress": round(min(max(fraction, 0.0), 1.0), 3)})

    async def job() -> None:
        try:
            result = await work(progress)
        except VoxboxError as exc:
            await _finish(b, task_id, "failed", error=exc.detail)
        except Exception:
            log.exception("task %s failed", task_id)
            await _finish(b, task_id, "failed", error="It failed on the server; try again.")
        else:
            await _finish(b, task_id, "ready", result=result)

    b.jobs.submit(f"task:{task_id}", job)


async def _update(b: Backends, task_id: str, **values: Any) -> None:
    if "result" in values:
        values["result"] = json.dumps(values["result"])
    async with b.transaction() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(**values))


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
    return task


async def fail_interrupted_tasks(b: Backends, before: datetime) -> int:
    """At start-up: tasks still running from before a restart will never finish."""
    async with b.transaction() as session:
        result = await session.execute(
            update(Task)
            .where(Task.state == "running", Task.created_at < before)
            .values(
                state="failed",
                error="The server restarted while this ran; start it again.",
                finished_at=utcnow(),
            )
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
