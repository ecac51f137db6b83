"""Backups and imports from the client's side: start the task, follow it, fetch the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from voxbox.client.http import ProgressCallback, VoxboxClient, VoxboxError
from voxbox.client.uploads import save_response

TaskProgress = Callable[[float], None]  # 0 to 1
POLL_SECONDS = 0.5


class TaskFailed(VoxboxError):
    """The server ran the task and it failed; the detail says why."""


def follow(
    client: VoxboxClient,
    kind: Literal["backup", "restore", "import"],
    task: dict[str, Any],
    on_progress: TaskProgress | None = None,
) -> dict[str, Any]:
    """Poll the task until it ends; its final state. Raises TaskFailed if it failed."""
    while task["state"] == "running":
        if on_progress is not None:
            on_progress(task["progress"])
        time.sleep(POLL_SECONDS)
        task = client.task(kind, task["id"])
    if task["state"] == "failed":
        raise TaskFailed(f"The {kind} failed", task.get("error") or "")
    if on_progress is not None:
        on_progress(1.0)
    return task


def download_backup(
    client: VoxboxClient, backup_id: str, dest: Path, on_progress: ProgressCallback | None = None
) -> Path:
    """Save a ready backup to ``dest`` (via ``<dest>.part``, so ``dest`` is never cut off)."""
    with client.stream_backup(backup_id) as response:
        return save_response(response, dest, on_progress)
