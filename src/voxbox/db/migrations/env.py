"""Alembic environment: migrations always run on a connection handed in by Database.migrate."""

from alembic import context

from voxbox.db.models import Base, ours

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("voxbox migrations run through voxbox.db.engine.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=ours,
)
with context.begin_transaction():
    context.run_migrations()
