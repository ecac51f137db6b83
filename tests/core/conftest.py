"""Core-level fixtures: a Backends of the test's own (SQLite in a temporary data dir, or a fresh
PostgreSQL database), and users made directly in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from support.backends import PostgresDatabases
from voxbox.config import load_settings
from voxbox.core.accounts import do_create_user
from voxbox.core.backends import Backends
from voxbox.core.principal import Principal

# Registration's write step takes the password hash; core tests never log in, so any string
# does (and no argon2 work is done).
PASSWORD_HASH = "not-a-real-hash"


@pytest.fixture
async def b(
    backend: str, pg_databases: PostgresDatabases, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Backends]:
    """Started as ``voxbox serve --no-jobs`` would be; with ``@pytest.mark.run_jobs``, it also
    runs background jobs (register the test's own with ``b.jobs.task`` in the test)."""
    url = pg_databases.create() if backend == "postgres" else None
    backends = Backends.from_settings(
        load_settings(
            data_dir=tmp_path,
            database_url=url,
            redis_url=None,
            storage_url=None,
            # Core tests post hundreds of messages as one user in a moment.
            limits={"send_burst": 100_000, "sends_per_hour": 1_000_000},
            transcribe={"engine": "off"},  # a test of transcripts turns it on
        )
    )
    await backends.start(run_jobs=request.node.get_closest_marker("run_jobs") is not None)
    try:
        yield backends
    finally:
        await backends.close()


MakeUsers = Callable[[str, int], Awaitable[list[Principal]]]


@pytest.fixture
def make_users(b: Backends) -> MakeUsers:
    """make_users(prefix, n): registers n users (each with their self chat) in one transaction."""

    async def make(prefix: str, n: int) -> list[Principal]:
        async with b.transaction() as session:
            return [
                Principal.of(
                    await do_create_user(session, f"{prefix}{i:03d}", PASSWORD_HASH, None, False)
                )
                for i in range(n)
            ]

    return make
