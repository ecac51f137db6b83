"""Settings: one object, read from env ``VOXBOX_*`` and an optional TOML file, passed down.

Nested sections use ``__`` in env names, e.g. ``VOXBOX_LIMITS__MAX_TEXT_CHARS=2000``.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import argon2
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Registration(StrEnum):
    open = "open"
    invite = "invite"
    closed = "closed"


class LimitsSettings(BaseModel):
    """Every size, count and rate limit the server enforces."""

    max_text_chars: int = Field(4096, ge=1)
    max_json_bytes: int = Field(64 * 1024, ge=1024)
    # A request's head (request line and headers): bytes and header fields (431 past either).
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    max_headers: int = Field(100, ge=10)
    forward_max_chats: int = Field(5, ge=1)
    group_max_members: int = Field(256, ge=2)
    page_max: int = Field(200, ge=1)
    search_results_max: int = Field(50, ge=1)  # GET /search?limit=
    search_offset_max: int = Field(1000, ge=0)  # GET /search?offset=: how deep a caller pages
    searches_per_minute: int = Field(120, ge=1)  # per user
    login_attempts_per_handle: int = Field(10, ge=1)
    login_attempts_per_address: int = Field(30, ge=1)
    login_window_seconds: int = Field(60, ge=1)
    # A login (token) unused this long ends: the next request with it is a 401.
    token_idle_days: int = Field(90, ge=1)
    # Registrations per client address per window (every attempt counts).
    registrations_per_address: int = Field(10, ge=1)
    registration_window_seconds: int = Field(3600, ge=1)
    # Password hashes computed at once (registrations, logins): the rest wait their turn, so
    # a crowd of logins never takes every core from the rest of the server.
    password_hashes_at_once: int = Field(2, ge=1)
    # Messages (sends and forwards) per user: a burst in a short window, and a rate per hour.
    send_burst: int = Field(30, ge=1)
    send_burst_seconds: int = Field(10, ge=1)
    sends_per_hour: int = Field(1000, ge=1)
    invite_ttl_hours: int = Field(24 * 7, ge=1)
    longpoll_max_seconds: int = Field(60, ge=1)
    websocket_queue: int = Field(1000, ge=10)
    # Every open socket gets a heartbeat this often, after reading the log for anything the bus
    # did not bring (a worker died after its commit, Redis dropped the connection).
    heartbeat_seconds: float = Field(5.0, gt=0, le=60)
    websocket_auth_seconds: float = Field(10.0, gt=0)
    # Acks covering a group message wait up to this long for the other members' acks, so the
    # sender gets one delivered receipt event per message (0: write each at once).
    receipt_batch_ms: int = Field(500, ge=0, le=1000)
    voice_max_seconds: int = Field(60 * 60, ge=1)
    audio_max_seconds: int = Field(6 * 60 * 60, ge=1)
    upload_max_bytes: int = Field(2 * 1024**3, ge=1024)
    # Each user's storage (media, drafts, backups to download; 0: no quota), and how many
    # unfinished uploads (drafts) they may have at once.
    storage_quota_bytes: int = Field(10 * 1000**3, ge=0)
    open_uploads_max: int = Field(20, ge=1)
    # New files (uploads, imports, restores, backups) are refused while the disk holds less than
    # this free: the rest is kept for the database, so logins, texts and deletes keep working.
    min_free_disk_bytes: int = Field(256 * 1024**2, ge=0)
    # Set aside in the data directory at start-up, and freed when something else fills the disk,
    # so the database can still take logins, texts and deletes (0: none).
    disk_reserve_bytes: int = Field(16 * 1024**2, ge=0)
    draft_ttl_hours: int = Field(24 * 7, ge=1)
    decode_max_seconds: float = Field(600.0, gt=0)
    # Files claiming a longer duration are processed by a background job (media.ready event).
    inline_max_seconds: int = Field(10 * 60, ge=0)
    # An upload being finished (turned into media) whose process died is sendable again after
    # this long; at once on a restart of the one process of an SQLite server.
    finish_lease_seconds: int = Field(30 * 60, ge=60)
    # The batched write path (core/writer.py): the most posts one transaction carries, and how
    # many such transactions may be in flight at once on PostgreSQL (SQLite: always one).
    write_batch_max: int = Field(256, ge=1)
    write_batches_in_flight: int = Field(4, ge=1)
    # Emailing voice messages (POST /messages/{id}/email): per user per hour, and the largest
    # attachment (the audio; its MP3 copy comes on top).
    emails_per_hour: int = Field(20, ge=1)
    email_max_bytes: int = Field(20 * 1000 * 1000, ge=1024)


class PasswordHashSettings(BaseModel):
    """The argon2id cost of new password hashes; the defaults are argon2-cffi's own.

    A hash keeps the parameters it was made with, so changing these never locks anyone out: old
    hashes still verify, and a login re-hashes the password at the current cost. Lower them only
    for tests and benchmarks, which register many users.
    """

    model_config = ConfigDict(frozen=True)

    time_cost: int = Field(argon2.DEFAULT_TIME_COST, ge=1)
    memory_cost: int = Field(argon2.DEFAULT_MEMORY_COST, ge=8)  # KiB
    parallelism: int = Field(argon2.DEFAULT_PARALLELISM, ge=1)

    @model_validator(mode="after")
    def _enough_memory(self) -> PasswordHashSettings:
        if self.memory_cost < 8 * self.parallelism:
            raise ValueError("argon2 needs memory_cost >= 8 KiB x parallelism")
        return self


class BackupSettings(BaseModel):
    """Users' encrypted backups (POST /backups) and the server's (voxbox admin backup)."""

    # scrypt cost (log2 N) of a new user backup: 18 is age's own, about a second and 256 MiB.
    work_factor: int = Field(18, ge=10, le=22)
    # The most a restore will spend: a crafted file must not ask for more.
    max_work_factor: int = Field(22, ge=10, le=24)
    keep_hours: int = Field(48, ge=1)  # a user's backup stays downloadable this long
    restore_max_bytes: int = Field(20 * 1024**3, ge=1024)
    # The server's backups: where to (a directory or s3://bucket/prefix), encrypted to whom
    # (an age public key, age1...), when (HH:MM, UTC, daily; none: only by command), how many.
    to: str | None = None
    recipient: str | None = None
    daily_at: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    keep: int = Field(7, ge=1)

    @model_validator(mode="after")
    def _schedule_has_where_and_whom(self) -> BackupSettings:
        if self.daily_at and not (self.to and self.recipient):
            raise ValueError("backup.daily_at needs backup.to and backup.recipient")
        if self.recipient:
            from voxbox import age  # cryptography: only when there is a key to check

            age.X25519Recipient.parse(self.recipient)  # its AgeError becomes the error
        return self


class ImportSettings(BaseModel):
    """Chats imported from other apps (POST /imports): the archive and what it may unpack to."""

    max_bytes: int = Field(2 * 1024**3, ge=1024)
    max_files: int = Field(100_000, ge=1)
    max_unpacked_bytes: int = Field(8 * 1024**3, ge=1024)
    max_ratio: int = Field(200, ge=1)  # how much one entry may expand (a zip bomb's is ~1000x)


class SmtpSettings(BaseModel):
    """The mail server voice messages are emailed through; no host: email is off."""

    model_config = ConfigDict(populate_by_name=True)

    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str | None = Field(None, alias="from")  # VOXBOX_SMTP__FROM
    timeout_seconds: float = Field(30.0, gt=0)


class JobSettings(BaseModel):
    """Background work (transcodes, blob clean-up, housekeeping, scheduled backups)."""

    concurrency: int = Field(2, ge=1, le=64)  # jobs one process runs at once
    # A process that runs jobs heartbeats every quarter of this; one silent this long is
    # presumed dead, and its jobs are queued again within another quarter (and claimed within
    # the 5 s a worker may wait between looks at the queue).
    lease_seconds: float = Field(20.0, ge=2, le=600)
    max_attempts: int = Field(5, ge=1, le=100)  # runs of a failing job, the first included
    shutdown_seconds: float = Field(10.0, ge=0)  # a stopping process lets its jobs end this long
    keep_finished_hours: int = Field(7 * 24, ge=1)  # then ended jobs are forgotten
    # When housekeeping runs (cron, UTC; a 6th field is seconds): expiring drafts and backups,
    # deleting unused blobs, forgetting old jobs. Once per time for the whole deployment.
    housekeeping_cron: str = "0 * * * *"

    @field_validator("housekeeping_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value


class TranscribeSettings(BaseModel):
    """Transcripts of voice and audio messages, made in the background (core/transcripts.py).

    ``pocketsphinx`` works offline with the US English model its wheel ships, or the model in
    ``model_dir`` (a directory holding an acoustic model directory, a ``*.lm.bin`` and a
    ``*.dict``). ``faster-whisper`` (``pip install voxbox[whisper]``) needs ``model_dir``: a
    CTranslate2 Whisper model, never downloaded. A missing model stops the server at start-up.
    """

    engine: Literal["pocketsphinx", "faster-whisper", "off"] = "pocketsphinx"
    model_dir: Path | None = None
    # Transcriptions one process runs at once, each in a process of its own (the engines hold
    # the GIL for seconds at a time, so never in the server's own).
    concurrency: int = Field(1, ge=1, le=16)
    # Longer media are not transcribed (state "failed", with the reason).
    max_seconds: int = Field(60 * 60, ge=1)

    @model_validator(mode="after")
    def _model_present(self) -> TranscribeSettings:
        if self.engine == "faster-whisper" and self.model_dir is None:
            raise ValueError("transcribe.engine faster-whisper needs transcribe.model_dir")
        if self.model_dir is not None and self.engine != "off":
            from voxbox.media.transcribe import ModelMissing, check_model

            try:
                check_model(self.engine, self.model_dir)
            except ModelMissing as exc:
                raise ValueError(str(exc)) from None
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOXBOX_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Path("./voxbox-data")
    registration: Registration = Registration.invite
    database_url: str | None = None
    redis_url: str | None = None
    # What this deployment's Redis keys and channels start with: give each deployment that
    # shares a Redis its own.
    redis_prefix: str = Field("voxbox", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    storage_url: str | None = None
    log_level: str = "INFO"
    # Behind a reverse proxy, trust X-Forwarded-For for the client address (rate limits, logs).
    trust_forwarded_for: bool = False
    # The bearer token a Prometheus scraper sends for /metrics; none: /metrics is off (404).
    metrics_token: SecretStr | None = None
    limits: LimitsSettings = LimitsSettings()
    password_hash: PasswordHashSettings = PasswordHashSettings()
    smtp: SmtpSettings = SmtpSettings()
    backup: BackupSettings = BackupSettings()
    imports: ImportSettings = ImportSettings()
    jobs: JobSettings = JobSettings()
    transcribe: TranscribeSettings = TranscribeSettings()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voxbox.db'}"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite database file (of an SQLite database URL)."""
        return Path(self.effective_database_url.split(":///", 1)[1])

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the TOML file (if any), then env, then explicit overrides.

    Env wins over the file, so one file can serve several workers that differ by env only.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as f:
            values = tomllib.load(f)
    env_keys = {k for k in os.environ if k.startswith("VOXBOX_")}
    for key in list(values):
        if f"VOXBOX_{key.upper()}" in env_keys:
            del values[key]
    values.update(overrides)
    return Settings(**values)
