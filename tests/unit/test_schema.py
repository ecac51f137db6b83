"""The SQLAlchemy models match the schema the Alembic migrations build, on SQLite and PostgreSQL.

The migrations define the schema (they run at start-up); the models are how the code sees it. A
column, index, constraint or type that one has and the other lacks shows up here as a difference
reported by Alembic's autogenerate comparison, on a database that only the migrations built.
No difference is tolerated: both backends compare clean, types and server defaults included, so
there is no dialect noise to filter. If a dialect ever reports some, filter exactly that case
here, with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from support.backends import BACKENDS, PostgresDatabases
from voxbox.db.engine import alembic_config
from voxbox.db.models import Base, ours


def _differences(connection: Connection) -> list[Any]:
    """Migrate the empty database to head, then compare it with the models.

    Besides tables, columns, nullability, indexes, unique constraints and foreign keys, this
    compares column types (e.g. Integer vs BigInteger) and server defaults (the models have none;
    a migration that adds one must say so in the model too). The job queue's tables are
    procrastinate's, not ours to model.
    """
    command.upgrade(alembic_config(connection), "head")
    options = {"compare_type": True, "compare_server_default": True, "include_name": ours}
    context = MigrationContext.configure(connection, opts=options)
    return compare_metadata(context, Base.metadata)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_models_match_migrations(
    backend: str, tmp_path: Path, pg_databases: PostgresDatabases
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
    else:
        url = pg_databases.create()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            diffs = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert diffs == [], "models and migrations differ:\n" + "\n".join(map(repr, diffs))
