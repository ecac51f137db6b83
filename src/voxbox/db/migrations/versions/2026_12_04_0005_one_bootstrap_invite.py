"""one unused admin invite from the server itself at a time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UNUSED_BOOTSTRAP = "grants_admin AND created_by IS NULL AND used_at IS NULL"


def upgrade() -> None:
    # Every start without an admin used to mint one: keep none of them (they were only ever
    # printed in logs); the next start shows the one invite there is from now on.
    op.execute(f"DELETE FROM invites WHERE {_UNUSED_BOOTSTRAP}")
    op.create_index(
        "uq_invites_bootstrap",
        "invites",
        ["grants_admin"],
        unique=True,
        sqlite_where=sa.text(_UNUSED_BOOTSTRAP),
        postgresql_where=sa.text(_UNUSED_BOOTSTRAP),
    )


def downgrade() -> None:
    op.drop_index("uq_invites_bootstrap", table_name="invites")
