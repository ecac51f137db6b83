"""Engine creation and schema migration (Alembic, applied at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from voxbox.metrics import USER_LOCK_HELD_SECONDS, WRITE_COMMIT_SECONDS

MIGRATIONS = Path(__file__).parent / "migrations"
CHECKPOINT_SECONDS = 1.0
T = TypeVar("T")
log = logging.getLogger(__name__)
# Set in a connection's info when a transaction locks users' rows (``core.events``), so the
# write path can tell how long it held them.
USER_LOCKS_AT = "voxbox_user_locks_at"


class Transact(Protocol):
    """Runs a function in one write transaction (commit if it returns, roll back if it raises)."""

    def __call__(self, fn: Callable[[Connection], T], /) -> T: ...


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only power loss or an OS crash
    # may drop the last transactions (docs/operations.md, "Durability").
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # No connection checkpoints as it commits (an fsync of the database file on the write path
    # every 1,000 pages); the writer's checkpointer does it beside the writes (_SQLiteWriter).
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        # Enough connections for a busy process without churn (each is a thread in aiosqlite).
        engine = create_async_engine(url, pool_size=20, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (three round trips per checkout on asyncpg); recycle instead.
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


class _SQLiteWriter:
    """One plain sqlite3 connection on one thread: a whole write transaction is one hop.

    Through aiosqlite every statement is a round trip to its thread (several hand-offs each);
    here the batched writer's function runs start to finish on the writer thread. The
    transaction is ``BEGIN IMMEDIATE``: it takes SQLite's write lock up front, so it never has
    to upgrade a read lock (which could fail with SQLITE_BUSY mid-batch).
    """

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url.replace("+aiosqlite", "+pysqlite", 1))
        event.listen(self.engine, "connect", self._on_connect)
        event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._local = threading.local()
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._checkpoints: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._checkpoints = asyncio.create_task(self._checkpoint_often(), name="sqlite-checkpoint")

    async def _checkpoint_often(self) -> None:
        """Copy the WAL into the database file every second, on a thread of its own.

        A PASSIVE checkpoint never blocks the writer, and the writer never waits for one: once
        a checkpoint has caught up, the next commit starts the WAL from its beginning again.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await loop.run_in_executor(self._checkpointer, self._checkpoint)
            except Exception:
                log.exception("checkpointing the SQLite WAL failed; trying again")

    def _checkpoint(self) -> None:
        conn = getattr(self._local, "checkpoint_conn", None)
        if conn is None:
            conn = self._local.checkpoint_conn = self.engine.raw_connection()
        cursor = conn.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
        finally:
            cursor.close()

    @staticmethod
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see "begin")
        _sqlite_pragmas(dbapi_conn, record)

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
        return conn

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        conn = self._connection()
        with conn.begin():
            return fn(conn)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, fn)

    async def call(self, fn: Callable[[Transact], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, self._transaction)

    def close(self) -> None:
        def _close() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()

        def _close_checkpoints() -> None:
            conn = getattr(self._local, "checkpoint_conn", None)
            if conn is not None:
                conn.close()

        if self._checkpoints is not None:
            self._checkpoints.cancel()
        self._checkpointer.submit(_close_checkpoints).result()
        self._checkpointer.shutdown()
        self._thread.submit(_close).result()
        self._thread.shutdown()
        self.engine.dispose()


class Database:
    """The engine, its session factory, and the write gate.

    SQLite allows one writer at a time; an in-process lock around write transactions turns
    lock contention into a fair queue instead of busy-waiting and SQLITE_BUSY errors.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._sqlite_writer = _SQLiteWriter(url) if self.is_sqlite else None

    def start(self) -> None:
        """Start background upkeep (SQLite: the WAL checkpointer); call in the event loop."""
        if self._sqlite_writer is not None:
            self._sqlite_writer.start()

    @contextlib.asynccontextmanager
    async def write_gate(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (no commit)."""
        async with self.sessions() as session:
            yield session

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction on a sync connection; commit if it returns.

        SQLite: on the writer thread, in one hop, under the write gate. PostgreSQL: through the
        async engine (``run_sync``), so several may run at once; row locks order them.
        """
        if self._sqlite_writer is not None:
            async with self.write_gate():
                return await self._sqlite_writer.run(fn)
        async with self.engine.begin() as conn:
            info = conn.info
            info.pop(USER_LOCKS_AT, None)
            result = await conn.run_sync(fn)
            committing = time.perf_counter()
        done = time.perf_counter()
        WRITE_COMMIT_SECONDS.observe(done - committing)
        locked_at = info.pop(USER_LOCKS_AT, None)
        if locked_at is not None:
            USER_LOCK_HELD_SECONDS.observe(done - locked_at)
        return result

    async def on_writer(self, fn: Callable[[Transact], T]) -> T:
        """SQLite only: run ``fn`` on the writer thread, under the write gate, with a function
        that runs one write transaction there. ``fn`` may run several back to back without a
        hop to the event loop in between (the write queue drains itself this way)."""
        assert self._sqlite_writer is not None, "on_writer is for SQLite"
        async with self.write_gate():
            return await self._sqlite_writer.call(fn)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision. Safe with several workers starting at once."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Serialize concurrent start-ups of several workers on one database.
                await conn.execute(text("SELECT pg_advisory_xact_lock(7460937)"))
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
