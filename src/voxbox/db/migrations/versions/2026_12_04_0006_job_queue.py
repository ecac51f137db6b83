"""the job queue's tables on PostgreSQL (procrastinate's schema)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

procrastinate 3.10 ships its whole schema (as of its migration 03.04.00) as one script; a later
procrastinate version comes with a migration of ours that applies its new migration files.
The embedded SQLite mode runs jobs in-process and has no such tables.
"""

from typing import Any

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # The script is many statements with PL/pgSQL bodies: it goes to asyncpg as one simple
    # query, inside the migration's transaction (no statement of it may run outside one).
    await_only(_asyncpg(bind).execute(SchemaManager.get_schema()))


def _asyncpg(bind: Connection) -> Any:
    raw = bind.connection.driver_connection
    assert raw is not None
    return raw


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        await_only(_asyncpg(bind).execute(_DROP))


_DROP = """
DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE 'DROP FUNCTION ' || f || ' CASCADE';
    END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
    procrastinate_job_to_defer_v1 CASCADE;
"""
