"""Where the client keeps its login, its place in the event stream and its unfinished uploads.

They live in one directory: ``$VOXBOX_CONFIG_DIR`` when set, else the platform's user config
directory for voxbox. Files there hold a bearer token, so they are private to the user
(directory 0700, files 0600) and replaced atomically so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent sends may lose an entry
    fcntl = None  # type: ignore[assignment]

import platformdirs

from voxbox.client.http import VoxboxError

CREDENTIALS_FILE = "credentials.json"
LISTEN_STATE_FILE = "listen-state.json"
UPLOADS_FILE = "uploads.json"
# Entries older than this are dropped: the server discards drafts long before (7 days default).
UPLOAD_ENTRY_MAX_AGE = 30 * 24 * 3600


@dataclass(frozen=True)
class Credentials:
    """A login: the server root URL, its bearer token and the handle it belongs to."""

    url: str
    token: str
    handle: str


def config_dir() -> Path:
    """The client's config directory (it may not exist yet)."""
    override = os.environ.get("VOXBOX_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("voxbox"))


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON, readable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    # O_EXCL with mode 0600: the token is never, even briefly, in a file others can read.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` if the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise VoxboxError("Unreadable config file", f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise VoxboxError("Unreadable config file", f"{path}: not a JSON object")
    return data


def save_credentials(credentials: Credentials) -> Path:
    """Store the login (replacing any previous one); returns the file's path."""
    path = config_dir() / CREDENTIALS_FILE
    _write_private(path, asdict(credentials))
    return path


def load_credentials() -> Credentials | None:
    """The stored login, or ``None`` when not logged in.

    Raises :class:`VoxboxError` when the file exists but is not a valid login.
    """
    path = config_dir() / CREDENTIALS_FILE
    data = _read(path)
    if data is None:
        return None
    try:
        return Credentials(url=data["url"], token=data["token"], handle=data["handle"])
    except KeyError as exc:
        raise VoxboxError("Unreadable config file", f"{path}: missing {exc}") from exc


def delete_credentials() -> None:
    """Forget the stored login and the event-stream position that belonged to it."""
    directory = config_dir()
    (directory / CREDENTIALS_FILE).unlink(missing_ok=True)
    (directory / LISTEN_STATE_FILE).unlink(missing_ok=True)


def load_listen_seq(credentials: Credentials, user_id: str) -> int | None:
    """The last event seq ``voxbox listen`` handled for user ``user_id`` on the login's server.

    Seqs are positions in one user's log, so the position is kept with the server's URL and
    the user's id, which the server gives (``/me``). A handle is not enough: a server set up
    again has new users, who may take the old handles. A position saved for another server or
    user is ignored. One saved before ids were kept (with the handle only) is read for the same
    URL and handle; the server answers one past its log's end with a reset.
    """
    data = _read(config_dir() / LISTEN_STATE_FILE)
    if data is None or data.get("url") != credentials.url:
        return None
    if "user_id" in data:
        if data["user_id"] != user_id:
            return None
    elif data.get("handle") != credentials.handle:
        return None
    seq = data.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None


def save_listen_seq(credentials: Credentials, user_id: str, seq: int) -> None:
    """Remember that user ``user_id`` handled the events up to ``seq`` on the login's server
    (replacing any position saved before)."""
    _write_private(
        config_dir() / LISTEN_STATE_FILE,
        {"url": credentials.url, "user_id": user_id, "handle": credentials.handle, "seq": seq},
    )


# -- unfinished uploads (`voxbox send FILE`) -----------------------------------------------------


@dataclass(frozen=True)
class PendingUpload:
    """An upload started by ``voxbox send`` and not yet posted: where it is on the server and
    the client_id its message is (or will be) posted with."""

    upload_url: str
    client_id: str


def upload_key(
    path: Path, credentials: Credentials, *, chat_id: str, kind: str, stat: os.stat_result
) -> str:
    """The key of sending this file (as it is now: size and mtime) to this chat as this kind,
    from this login. Any change starts a new upload instead of continuing a stale one."""
    parts = [
        str(path.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        credentials.url,
        credentials.handle,
        chat_id,
        kind,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@contextlib.contextmanager
def _uploads_locked() -> Iterator[Path]:
    """Hold the lock of the uploads file (two sends at once must not lose each other's entry)."""
    path = config_dir() / UPLOADS_FILE
    if fcntl is None:
        yield path
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_name(UPLOADS_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _upload_entries(path: Path) -> dict[str, Any]:
    data = _read(path) or {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def load_pending_upload(key: str) -> PendingUpload | None:
    """The unfinished upload stored under ``key``, if any."""
    data = _read(config_dir() / UPLOADS_FILE) or {}
    entry = data.get(key)
    if not isinstance(entry, dict):
        return None
    url, client_id = entry.get("upload_url"), entry.get("client_id")
    if not isinstance(url, str) or not isinstance(client_id, str):
        return None
    return PendingUpload(upload_url=url, client_id=client_id)


def save_pending_upload(key: str, pending: PendingUpload, *, path: Path) -> None:
    """Remember an unfinished upload of ``path`` under ``key`` (and drop entries so old that
    their uploads are surely gone)."""
    now = time.time()
    with _uploads_locked() as file:
        entries = {
            k: v
            for k, v in _upload_entries(file).items()
            if isinstance(saved := v.get("saved_at"), int | float)
            and now - saved < UPLOAD_ENTRY_MAX_AGE
        }
        entries[key] = asdict(pending) | {"path": str(path), "saved_at": now}
        _write_private(file, entries)


def forget_pending_upload(key: str) -> None:
    """Drop the entry under ``key`` (its message was posted, or it cannot be sent)."""
    with _uploads_locked() as file:
        entries = _upload_entries(file)
        if entries.pop(key, None) is not None:
            _write_private(file, entries)
