"""media and uploads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("uploader_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_size", sa.BigInteger(), nullable=False),
        sa.Column("source_content_type", sa.String(length=128), nullable=False),
        sa.Column("original_key", sa.String(length=160), nullable=True),
        sa.Column("ogg_key", sa.String(length=160), nullable=True),
        sa.Column("ogg_size", sa.BigInteger(), nullable=True),
        sa.Column("mp3_key", sa.String(length=160), nullable=True),
        sa.Column("mp3_size", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("waveform", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["uploader_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_ogg_key"), ["ogg_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_source_sha256"), ["source_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_uploader_id"), ["uploader_id"], unique=False)

    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.String(length=26), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_user_id"), ["user_id"], unique=False)

    op.create_table(
        "upload_parts",
        sa.Column("upload_id", sa.String(length=26), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id", "offset"),
    )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_id", sa.String(length=26), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_media_id"), ["media_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_messages_media_id_media", "media", ["media_id"], ["id"], ondelete="RESTRICT"
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("fk_messages_media_id_media", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_messages_media_id"))
        batch_op.drop_column("media_id")

    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_user_id"))
        batch_op.drop_index(batch_op.f("ix_uploads_expires_at"))

    op.drop_table("upload_parts")
    op.drop_table("uploads")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_uploader_id"))
        batch_op.drop_index(batch_op.f("ix_media_source_sha256"))
        batch_op.drop_index(batch_op.f("ix_media_ogg_key"))

    op.drop_table("media")
