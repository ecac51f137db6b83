"""The batched write path: concurrent writes queue up and commit together.

A caller submits an item with the batch function that writes it (``do_send_messages`` for
posts, ``do_acks`` for acks). A writer takes everything of one kind that is waiting and runs
the function over those items in ONE transaction; then the events the transaction logged are
published, in commit order, and only then is each caller answered. While a batch commits, the
next one gathers: under load a commit carries many writes (group commit); alone, a write waits
for nothing.

On SQLite the writer is the database's writer thread, which takes batch after batch by itself
(``Database.on_writer``): it never waits for the busy event loop between two commits. On
PostgreSQL several batches run at once through the async engine.

A batch function checks every item before it writes anything and reports a failed check as that
item's outcome (a ``VoxboxError``), so one caller's bad request never fails the others. If the
transaction itself fails (a constraint a concurrent worker won, a deadlock), each item is run
again in a transaction of its own, so only the culprit sees the error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from voxbox.core.errors import VoxboxError
from voxbox.db.engine import Database, Transact
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


@dataclass(frozen=True)
class _Committed:
    """A batch's fate: its outcomes and events, or the error of its transaction."""

    batch: list[_Pending]
    result: tuple[Sequence[Any], Sequence[Envelope]] | BaseException
    seconds: float


# On SQLite the writer thread drains the queue itself; after this many batches it hands the
# write gate back, so writes outside the queue (Backends.transaction) get their turn.
BATCHES_PER_GATE = 16


class WriteQueue:
    """Queues writes and commits them in batches (see the module's docstring).

    On SQLite the writer thread takes batch after batch, under the write gate, without waiting
    for the event loop in between: the loop only queues writes and publishes what committed.
    On PostgreSQL ``writers`` batches may be in flight at once; row locks order them.
    """

    def __init__(self, db: Database, bus: EventBus, *, max_batch: int, writers: int) -> None:
        self._db = db
        self._bus = bus
        self._max_batch = max_batch
        self._writers = 1 if db.is_sqlite else writers
        self._queue: list[_Pending] = []
        self._lock = threading.Lock()  # the queue is taken from on the SQLite writer thread
        self._wake = asyncio.Event()
        self._committed: asyncio.Queue[_Committed | None] = asyncio.Queue()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"write-queue-{i}") for i in range(self._writers)
        ]
        self._publisher = asyncio.create_task(self._publish_committed(), name="write-publisher")

    async def close(self) -> None:
        """Write what is queued, publish it, then stop."""
        self._closing = True
        self._wake.set()
        await asyncio.gather(*self._tasks)
        self._committed.put_nowait(None)
        if self._publisher is not None:
            await self._publisher

    async def submit(
        self, fn: Callable[[Connection, list[Item]], BatchResult[Outcome]], item: Item
    ) -> Outcome:
        """Write ``item`` with ``fn`` in the next batch; its outcome once committed and
        published, or its error."""
        if self._closing:
            raise RuntimeError("the write queue is closed")
        pending = _Pending(fn, item)
        with self._lock:
            self._queue.append(pending)
        self._wake.set()
        result: Outcome = await pending.future
        return result

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._db.is_sqlite:
                await self._db.on_writer(lambda transact: self._drain(transact, loop))
                continue
            batch = self._take()
            if batch is None:
                continue
            if self._queue:
                self._wake.set()  # another writer may start on the rest
            started = time.perf_counter()
            try:
                result: Any = await self._db.run_write(partial(_apply, batch=batch))
            except Exception as exc:
                result = exc
            await self._settle(_Committed(batch, result, time.perf_counter() - started))

    def _take(self) -> list[_Pending] | None:
        """The oldest waiting write and, up to ``max_batch``, the others of its kind.

        One kind per transaction keeps each transaction's lock order that of its batch
        function (on PostgreSQL, posts lock chats before users; acks lock users only).
        """
        with self._lock:
            if not self._queue:
                return None
            fn = self._queue[0].fn
            batch: list[_Pending] = []
            rest: list[_Pending] = []
            for p in self._queue:
                (batch if p.fn is fn and len(batch) < self._max_batch else rest).append(p)
            self._queue = rest
            return batch

    def _drain(self, transact: Transact, loop: asyncio.AbstractEventLoop) -> None:
        """On the SQLite writer thread: commit batches back to back while writes are waiting;
        each committed batch goes to the loop to be published and answered."""
        for _ in range(BATCHES_PER_GATE):
            batch = self._take()
            if batch is None:
                return
            started = time.perf_counter()
            try:
                result: Any = transact(partial(_apply, batch=batch))
            except Exception as exc:
                if len(batch) > 1:
                    log.info(
                        "a batch of %d failed (%s); writing its items one by one", len(batch), exc
                    )
                    for p in batch:
                        self._drain_one(transact, loop, p)
                    continue
                result = exc
            loop.call_soon_threadsafe(
                self._committed.put_nowait,
                _Committed(batch, result, time.perf_counter() - started),
            )

    def _drain_one(
        self, transact: Transact, loop: asyncio.AbstractEventLoop, pending: _Pending
    ) -> None:
        started = time.perf_counter()
        try:
            result: Any = transact(partial(_apply, batch=[pending]))
        except Exception as exc:
            result = exc
        loop.call_soon_threadsafe(
            self._committed.put_nowait,
            _Committed([pending], result, time.perf_counter() - started),
        )

    async def _settle(self, committed: _Committed) -> None:
        """PostgreSQL: a failed batch of several is written again one by one; then publish."""
        if isinstance(committed.result, BaseException) and len(committed.batch) > 1:
            log.info(
                "a batch of %d failed (%s); writing its items one by one",
                len(committed.batch),
                committed.result,
            )
            for p in committed.batch:
                started = time.perf_counter()
                try:
                    result: Any = await self._db.run_write(partial(_apply, batch=[p]))
                except Exception as exc:
                    result = exc
                self._committed.put_nowait(_Committed([p], result, time.perf_counter() - started))
            return
        self._committed.put_nowait(committed)

    async def _publish_committed(self) -> None:
        """Publish committed batches in commit order, then answer their callers."""
        while (committed := await self._committed.get()) is not None:
            try:
                await self._answer(committed)
            except Exception as exc:  # never leave a caller waiting
                log.exception("answering a write batch of %d failed", len(committed.batch))
                for p in committed.batch:
                    if not p.future.done():
                        p.future.set_exception(exc)

    async def _answer(self, committed: _Committed) -> None:
        batch, result = committed.batch, committed.result
        if isinstance(result, BaseException):
            if not batch[0].future.done():
                batch[0].future.set_exception(result)
            return
        outcomes, envelopes = result
        WRITE_BATCH_SIZE.observe(len(batch))
        WRITE_BATCH_SECONDS.observe(committed.seconds)
        await publish(self._bus, envelopes)
        for p, outcome in zip(batch, outcomes, strict=True):
            if p.future.done():  # the caller went away (its request was cancelled)
                continue
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
