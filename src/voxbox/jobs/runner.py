"""Work bound to this process: tracked asyncio tasks, cancelled at shutdown.

What runs here dies with the process. Durable work goes through a ``JobQueue``; this runs what
cannot leave the process (a user's backup holds a passphrase that is never written down) and,
in the embedded SQLite mode, the queue's own jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]


class LocalRunner:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, name: str, work: Work) -> None:
        """Run ``work`` soon, in this process; failures are logged, never raised to the caller."""
        self.spawn(name, self._run_once(name, work))

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` until it ends or the runner closes."""
        task = asyncio.create_task(coro, name=f"job:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_once(self, name: str, work: Work) -> None:
        try:
            await work()
        except Exception:
            log.exception("job %s failed", name)
