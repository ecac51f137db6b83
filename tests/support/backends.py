"""The services behind the `postgres` backend: a fresh PostgreSQL database per use, and Redis.

They are not optional: when PostgreSQL or Redis is unreachable the postgres-backed tests fail
(CI starts both; `scripts/test-deps.sh` starts them locally when it may).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

PG_ADMIN_DSN = os.environ.get("VOXBOX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_SERVER_BASE = os.environ.get(
    "VOXBOX_TEST_PG_SERVER_BASE", "postgresql+asyncpg://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("VOXBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

BACKENDS = ("sqlite", "postgres")


class PostgresDatabases:
    """Creates `voxbox_test_<hex>` databases and drops every one of them at `drop_all()`."""

    def __init__(self, admin_dsn: str = PG_ADMIN_DSN) -> None:
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run on a loop of its own in a worker thread: callers may be inside a running loop."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, coro).result()

    def create(self) -> str:
        """A new empty database; returns the server's VOXBOX_DATABASE_URL for it."""
        name = f"voxbox_test_{secrets.token_hex(6)}"
        try:
            self._run(self._execute(f'CREATE DATABASE "{name}"'))
        except (TimeoutError, OSError, asyncpg.PostgresError) as e:
            pytest.fail(
                f"PostgreSQL at {self.admin_dsn} is not usable ({e!r}); the postgres backend "
                "tests need it (run scripts/test-deps.sh or start PostgreSQL)",
                pytrace=False,
            )
        self.created.append(name)
        return f"{PG_SERVER_BASE}/{name}"

    def drop_all(self) -> None:
        async def drop() -> None:
            for name in self.created:
                await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        if self.created:
            self._run(drop())
            self.created.clear()


def check_redis(url: str = REDIS_URL) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as e:
        pytest.fail(
            f"Redis at {url} is not usable ({e!r}); the postgres backend tests need it "
            "(run scripts/test-deps.sh or start Redis)",
            pytrace=False,
        )


def run_sql(settings: dict[str, str | None], data_dir: Path, statement: str) -> None:
    """Run one SQL statement on a server's database (SQLite file, or PostgreSQL), as a crash or
    an old server would have left it. Stop the server first when its caches matter."""
    url = settings.get("VOXBOX_DATABASE_URL")
    if not url:
        with sqlite3.connect(Path(data_dir) / "voxbox.db") as conn:
            conn.execute(statement)
        return
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def execute() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute())


async def query_pg(settings: dict[str, str | None], statement: str) -> list[dict[str, Any]]:
    """The rows of one SQL query on a PostgreSQL server's database."""
    dsn = str(settings["VOXBOX_DATABASE_URL"]).replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [dict(row) for row in await conn.fetch(statement)]
    finally:
        await conn.close()


def find_in_database(settings: dict[str, str | None], data_dir: str, needle: str) -> list[str]:
    """`table.column` of every stored value containing `needle` (any column, cast to text).

    Schema-agnostic on purpose: the tests check what is at rest without knowing the models.
    """
    url = settings.get("VOXBOX_DATABASE_URL")
    if not url:
        return _find_in_sqlite(Path(data_dir) / "voxbox.db", needle)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    out: list[str] = []

    async def scan() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            cols = await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
            for row in cols:
                t, c = row["table_name"], row["column_name"]
                found = await conn.fetchval(
                    f'SELECT 1 FROM "{t}" WHERE strpos(CAST("{c}" AS TEXT), $1) > 0 LIMIT 1',
                    needle,
                )
                if found:
                    out.append(f"{t}.{c}")
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scan()).result()
    return out


def _find_in_sqlite(path: Path, needle: str) -> list[str]:
    out: list[str] = []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            for col in conn.execute(f'PRAGMA table_info("{t}")').fetchall():
                c = col[1]
                q = f'SELECT 1 FROM "{t}" WHERE instr(CAST("{c}" AS TEXT), ?) > 0 LIMIT 1'
                if conn.execute(q, (needle,)).fetchone():
                    out.append(f"{t}.{c}")
    finally:
        conn.close()
    return out
