"""SQLAlchemy 2 models. The schema itself is defined by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether a database object is voxbox's to compare with the models: the job queue's
    tables (``procrastinate_*``, PostgreSQL) are procrastinate's, made by migration 0006; the
    full-text index (SQLite's ``search_fts*`` tables, PostgreSQL's GIN index on an expression)
    is made by migration 0008 and has no model."""
    name = name or ""
    if type_ == "table":
        return not name.startswith(("procrastinate_", "search_fts"))
    return not (type_ == "index" and name == "ix_search_docs_tsv")


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Highest seq in this user's event log; bumped in the transaction that logs events.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Highest seq any of the user's clients acknowledged (drives "delivered" receipts).
    acked_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Whether the voice and audio messages this user sends are transcribed.
    transcribe: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Token(Base):
    __tablename__ = "tokens"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Refreshed at most hourly; a login unused for limits.token_idle_days ends (None: never).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Invite(Base):
    __tablename__ = "invites"
    __table_args__ = (
        # At most one unused admin invite from the server itself (while it has no admin): the
        # workers of a deployment that start together all show the same one.
        Index(
            "uq_invites_bootstrap",
            "grants_admin",
            unique=True,
            sqlite_where=text("grants_admin AND created_by IS NULL AND used_at IS NULL"),
            postgresql_where=text("grants_admin AND created_by IS NULL AND used_at IS NULL"),
        ),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    grants_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str | None] = mapped_column(String(128))
    # "user_a:user_b" (sorted) for direct chats, "self:user" for self chats: one per pair.
    unique_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_message_id: Mapped[str | None] = mapped_column(String(26))


class Member(Base):
    """A user's membership of a chat, kept after leaving so history stays readable.

    The member sees messages with ``joined_id < id <= left_id`` (ids are time-sortable).
    """

    __tablename__ = "members"

    chat_id: Mapped[str] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8))
    joined_id: Mapped[str] = mapped_column(String(26))
    left_id: Mapped[str | None] = mapped_column(String(26))
    last_read_id: Mapped[str | None] = mapped_column(String(26))


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_id", name="uq_messages_sender_client"),
        Index("ix_messages_chat_id_id", "chat_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    sender_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str | None] = mapped_column(Text)
    reply_to_id: Mapped[str | None] = mapped_column(String(26))
    media_id: Mapped[str | None] = mapped_column(
        ForeignKey("media.id", ondelete="RESTRICT"), index=True
    )
    forwarded_from_id: Mapped[str | None] = mapped_column(String(26))
    view_once: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept from elsewhere (an import or a restored backup): where from, and the name of a sender
    # who is not a user here (``sender_id`` is then the user who brought the message in).
    imported: Mapped[str | None] = mapped_column(String(16))
    sender_name: Mapped[str | None] = mapped_column(String(128))


class Receipt(Base):
    __tablename__ = "receipts"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HiddenMessage(Base):
    """A message deleted "for me"."""

    __tablename__ = "hidden_messages"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )


class Star(Base):
    __tablename__ = "stars"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """One entry of a user's durable event log. ``data`` is the JSON text sent to clients."""

    __tablename__ = "events"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)
    # The message a message.created event is about: acks turn into delivered receipts.
    message_id: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Media(Base):
    """A voice note or audio file: its playable Ogg/Opus rendition and, for files, the original.

    Blobs are content-addressed (keys from sha256), so two media with the same bytes share them.
    """

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    uploader_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12))  # processing | ready | failed
    error: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_size: Mapped[int] = mapped_column(BigInteger)
    source_content_type: Mapped[str] = mapped_column(String(128))
    original_key: Mapped[str | None] = mapped_column(String(160))  # kept for audio files
    ogg_key: Mapped[str | None] = mapped_column(String(160), index=True)
    ogg_size: Mapped[int | None] = mapped_column(BigInteger)
    mp3_key: Mapped[str | None] = mapped_column(String(160))
    mp3_size: Mapped[int | None] = mapped_column(BigInteger)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    waveform: Mapped[str | None] = mapped_column(Text)  # JSON list of 64 ints
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Upload(Base):
    """An unfinished tus upload. Its bytes live in the blob store as parts keyed by offset."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    length: Mapped[int | None] = mapped_column(BigInteger)
    metadata_json: Mapped[str] = mapped_column(Text)
    chat_id: Mapped[str | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    kind: Mapped[str | None] = mapped_column(String(8))
    # open: takes PATCHes; finishing: being turned into media (one request at a time).
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class UploadPart(Base):
    """The bytes one PATCH brought, stored as a blob; parts in offset order make the upload."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(160))


class Task(Base):
    """A user's long task (a backup, a restore, an import), as its progress is reported."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # backup | restore | import
    state: Mapped[str] = mapped_column(String(8))  # running | ready | failed
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)  # JSON: counts, skipped lines, chat id
    blob_key: Mapped[str | None] = mapped_column(String(160))  # a backup's file
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Refreshed by the process running it; a running task silent for a lease was abandoned.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Transcript(Base):
    """What is said in a media (voice note or audio file), shared by every message posting it.

    ``pending`` from the moment a message posts it (not a view-once one) until the background
    job ends, ``ready`` or ``failed`` (``error`` says why). No row: not transcribed ("off").
    """

    __tablename__ = "transcripts"

    media_id: Mapped[str] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(8))  # pending | ready | failed
    text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    words: Mapped[str | None] = mapped_column(Text)  # JSON: [{"w", "start_ms", "end_ms"}]
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SearchDoc(Base):
    """What search finds a message by: a text message's text, a voice or audio message's
    transcript. Kept by triggers (migration 0008) as messages come and go, and by the
    transcription job as transcripts come. The full-text index over ``body`` is SQLite's FTS5
    table ``search_fts`` or PostgreSQL's GIN index ``ix_search_docs_tsv``."""

    __tablename__ = "search_docs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[str] = mapped_column(String(26))  # the message's, indexed with the body
    body: Mapped[str] = mapped_column(Text)
