"""transcripts, the users' choice to be transcribed, and the full-text index of messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

``search_docs`` holds what a message is found by, with its chat. Triggers keep it as messages
come and go, on every path that writes them (sends, forwards, imports, restores, deletes): a text
message's text, and a voice or audio message's transcript when it is ready already (a forward).
The transcription job adds the documents of the messages that were waiting for their transcript.
A view-once message never has one. The index itself: an FTS5 table over it on SQLite (kept by
triggers on ``search_docs``), which indexes the chat too, so that a search of the caller's chats
reads only their part of a common word's list; a GIN index of its ``simple`` tsvector on
PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A message's document, if it has one now: the body of a text message, or the ready transcript
# of a voice or audio message (not a view-once one).
_DOC_OF_NEW = """
    INSERT INTO search_docs (message_id, chat_id, body)
    SELECT NEW.id, NEW.chat_id, NEW.text WHERE NEW.kind = 'text' AND NEW.text IS NOT NULL
        AND NEW.deleted_at IS NULL
    UNION ALL
    SELECT NEW.id, NEW.chat_id, t.text FROM transcripts t
    WHERE t.media_id = NEW.media_id AND t.state = 'ready' AND t.text <> ''
        AND NOT NEW.view_once AND NEW.deleted_at IS NULL
"""

_SQLITE = [
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        body, chat_id, content='search_docs', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
        INSERT INTO search_fts (rowid, body, chat_id) VALUES (NEW.id, NEW.body, NEW.chat_id);
    END""",
    """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
        INSERT INTO search_fts (search_fts, rowid, body, chat_id)
        VALUES ('delete', OLD.id, OLD.body, OLD.chat_id);
    END""",
    """CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN
        INSERT INTO search_fts (search_fts, rowid, body, chat_id)
        VALUES ('delete', OLD.id, OLD.body, OLD.chat_id);
        INSERT INTO search_fts (rowid, body, chat_id) VALUES (NEW.id, NEW.body, NEW.chat_id);
    END""",
    f"""CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
        {_DOC_OF_NEW};
    END""",
    """CREATE TRIGGER messages_search_au AFTER UPDATE OF deleted_at, text ON messages
    WHEN NEW.deleted_at IS NOT NULL OR (NEW.kind = 'text' AND NEW.text IS NULL) BEGIN
        DELETE FROM search_docs WHERE message_id = NEW.id;
    END""",
]

_POSTGRES = [
    # Search matches words with or without accents: the index and the query fold them alike
    # (the query's words are folded in Python). unaccent is a trusted extension (PostgreSQL 13+):
    # the database's owner may create it. Wrapped, because an index needs an immutable function.
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    """CREATE FUNCTION voxbox_fold(text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$""",
    "CREATE INDEX ix_search_docs_tsv ON search_docs"
    " USING gin (to_tsvector('simple', voxbox_fold(body)))",
    f"""CREATE FUNCTION voxbox_messages_search_ai() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.media_id IS NOT NULL THEN
            -- A transcript being finished (under an update lock) is waited for, so this message
            -- is either in its finishing or sees it ready.
            PERFORM 1 FROM transcripts WHERE media_id = NEW.media_id FOR SHARE;
        END IF;
        {_DOC_OF_NEW};
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER messages_search_ai AFTER INSERT ON messages
        FOR EACH ROW EXECUTE FUNCTION voxbox_messages_search_ai()""",
    """CREATE FUNCTION voxbox_messages_search_au() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM search_docs WHERE message_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER messages_search_au AFTER UPDATE OF deleted_at, text ON messages
        FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL OR (NEW.kind = 'text' AND NEW.text IS NULL))
        EXECUTE FUNCTION voxbox_messages_search_au()""",
]


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transcribe", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "transcripts",
        sa.Column("media_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("words", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("media_id"),
    )
    op.create_table(
        "search_docs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("chat_id", sa.String(length=26), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    for statement in _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRES:
        op.execute(statement)
    op.execute(
        "INSERT INTO search_docs (message_id, chat_id, body)"
        " SELECT id, chat_id, text FROM messages"
        " WHERE kind = 'text' AND text IS NOT NULL AND deleted_at IS NULL ORDER BY id"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("messages_search_ai", "messages_search_au"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE search_fts")
    else:
        op.execute("DROP TRIGGER messages_search_ai ON messages")
        op.execute("DROP TRIGGER messages_search_au ON messages")
        op.execute("DROP FUNCTION voxbox_messages_search_ai(), voxbox_messages_search_au()")
        op.execute("DROP INDEX ix_search_docs_tsv")
        op.execute("DROP FUNCTION voxbox_fold(text)")
    op.drop_table("search_docs")
    op.drop_table("transcripts")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("transcribe")
