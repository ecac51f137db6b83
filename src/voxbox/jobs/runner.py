"""In-process job runner: one-off jobs and periodic ones, tracked and cancelled at shutdown.

Jobs take ids, reload what they need, and are idempotent, so running one twice (or after a
restart) does no harm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


class JobRunner:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, name: str, job: Job) -> None:
        """Run ``job`` soon, in this process; failures are logged, never raised to the caller."""
        self._spawn(name, self._run_once(name, job))

    def every(self, seconds: float, name: str, job: Job) -> None:
        """Run ``job`` now and then every ``seconds`` until shutdown."""
        self._spawn(name, self._run_every(seconds, name, job))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"job:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_once(self, name: str, job: Job) -> None:
        try:
            await job()
        except Exception:
            log.exception("job %s failed", name)

    async def _run_every(self, seconds: float, name: str, job: Job) -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", name)
            await asyncio.sleep(seconds)
