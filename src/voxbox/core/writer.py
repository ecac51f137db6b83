"""The batched write path: concurrent writes queue up and commit together.

A caller submits an item with the batch function that writes it (``do_send_messages`` for
posts, ``do_acks`` for acks). A writer task takes everything of one kind that is waiting, runs
the function over those items in ONE transaction (one hop to the database thread on SQLite, see
``Database.run_write``), publishes the events the transaction logged, and only then answers
each caller. While a batch
commits, the next one gathers: under load a commit carries many writes (group commit); alone, a
write waits for nothing.

A batch function checks every item before it writes anything and reports a failed check as that
item's outcome (a ``VoxboxError``), so one caller's bad request never fails the others. If the
transaction itself fails (a constraint a concurrent worker won, a deadlock), each item is run
again in a transaction of its own, so only the culprit sees the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from voxbox.core.errors import VoxboxError
from voxbox.db.engine import Database
from voxbox.events.bus import Envelope, EventBus
from voxbox.metrics import WRITE_BATCH_SECONDS, WRITE_BATCH_SIZE

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class BatchResult(Generic[Outcome]):
    """What a batch function returns: one outcome per item, in order, and the logged events."""

    outcomes: Sequence[Outcome | VoxboxError]
    envelopes: Sequence[Envelope]


BatchFn = Callable[[Connection, list[Any]], BatchResult[Any]]


@dataclass(eq=False)
class _Pending:
    fn: BatchFn
    item: Any
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WriteQueue:
    """Queues writes and commits them in batches (see the module's docstring).

    ``writers`` batches may be in flight at once: 1 on SQLite (one writer anyway); more on
    PostgreSQL, where row locks order concurrent transactions.
    """

    def __init__(self, db: Database, bus: EventBus, *, max_batch: int, writers: int) -> None:
        self._db = db
        self._bus = bus
        self._max_batch = max_batch
        self._writers = writers
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"write-queue-{i}") for i in range(self._writers)
        ]

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wake.set()
        await asyncio.gather(*self._tasks)

    async def submit(
        self, fn: Callable[[Connection, list[Item]], BatchResult[Outcome]], item: Item
    ) -> Outcome:
        """Write ``item`` with ``fn`` in the next batch; its outcome once committed and
        published, or its error."""
        if self._closing:
            raise RuntimeError("the write queue is closed")
        pending = _Pending(fn, item)
        self._queue.append(pending)
        self._wake.set()
        result: Outcome = await pending.future
        return result

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            if self._queue:
                self._wake.set()  # another writer may start on the rest
            try:
                await self._write(batch)
            except Exception as exc:  # never leave a caller waiting
                log.exception("a write batch of %d failed", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)

    def _take(self) -> list[_Pending]:
        """The oldest waiting write and, up to ``max_batch``, the others of its kind.

        One kind per transaction keeps each transaction's lock order that of its batch
        function (on PostgreSQL, posts lock chats before users; acks lock users only).
        """
        fn = self._queue[0].fn
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        for p in self._queue:
            (batch if p.fn is fn and len(batch) < self._max_batch else rest).append(p)
        self._queue = rest
        return batch

    async def _write(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            outcomes, envelopes = await self._db.run_write(lambda conn: _apply(conn, batch))
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            log.info("a batch of %d failed (%s); writing its items one by one", len(batch), exc)
            for p in batch:
                await self._write([p])
            return
        WRITE_BATCH_SIZE.observe(len(batch))
        WRITE_BATCH_SECONDS.observe(time.perf_counter() - started)
        await publish(self._bus, envelopes)
        for p, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, VoxboxError):
                p.future.set_exception(outcome)
            else:
                p.future.set_result(outcome)


def _apply(conn: Connection, batch: list[_Pending]) -> tuple[Sequence[Any], Sequence[Envelope]]:
    """Run the batch's function (one for the whole batch) over its items, in one transaction."""
    result = batch[0].fn(conn, [p.item for p in batch])
    return result.outcomes, result.envelopes


RETRY_DELAYS = (0.1, 0.5, 2.0, 5.0)


async def publish(bus: EventBus, envelopes: Sequence[Envelope]) -> None:
    """Publish committed events. A failure is logged and retried in the background, never raised:
    the events are in the log, and clients catch up from it on their next resume."""
    for i, envelope in enumerate(envelopes):
        try:
            await bus.publish(envelope)
        except Exception:
            log.exception("publishing %s failed; retrying in the background", envelope.type)
            task = asyncio.create_task(_retry(bus, list(envelopes[i:])), name="publish-retry")
            _RETRIES.add(task)
            task.add_done_callback(_RETRIES.discard)
            return


_RETRIES: set[asyncio.Task[None]] = set()


async def _retry(bus: EventBus, envelopes: list[Envelope]) -> None:
    for delay in RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            while envelopes:
                await bus.publish(envelopes[0])
                envelopes.pop(0)
            return
        except Exception:
            log.warning("publishing %d events failed again", len(envelopes), exc_info=True)
    log.error("gave up publishing %d events; clients will catch up from the log", len(envelopes))
