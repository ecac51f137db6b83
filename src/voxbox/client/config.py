"""Where the client keeps its login and its place in the event stream.

Both live in one directory: ``$VOXBOX_CONFIG_DIR`` when set, else the platform's user config
directory for voxbox. Files there hold a bearer token, so they are private to the user
(directory 0700, files 0600) and replaced atomically so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from voxbox.client.http import VoxboxError

CREDENTIALS_FILE = "credentials.json"
LISTEN_STATE_FILE = "listen-state.json"


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


def load_listen_seq(credentials: Credentials) -> int | None:
    """The last event seq handled by ``voxbox listen`` for this login, if any.

    A position saved for another server or account is ignored: seqs are per user.
    """
    data = _read(config_dir() / LISTEN_STATE_FILE)
    if data is None or data.get("url") != credentials.url:
        return None
    if data.get("handle") != credentials.handle:
        return None
    seq = data.get("seq")
    return seq if isinstance(seq, int) else None


def save_listen_seq(credentials: Credentials, seq: int) -> None:
    """Remember that events up to ``seq`` were handled for this login."""
    _write_private(
        config_dir() / LISTEN_STATE_FILE,
        {"url": credentials.url, "handle": credentials.handle, "seq": seq},
    )
