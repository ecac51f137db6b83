"""A media folder: every voice and audio message of the user's chats, mirrored into a directory.

Layout (names made safe on any OS):

- voice notes: ``DIR/<chat>/Voice Notes/2026-11/2026-11-25 14.03.12 Alice.opus`` (Ogg/Opus);
- audio files: ``DIR/<chat>/Audio/<original file name>`` (as uploaded; `` (2)`` before the
  extension when two share a name).

Title, artist (the sender), album (the chat) and date tags are written into each file (Vorbis
comments for Opus and Ogg, ID3 for MP3, the format's own for the rest), so any music player lists
them. ``DIR/.voxbox-sync.json`` records which message went to which file: a second run
downloads nothing it already has, and an interrupted run continues (a partial download
resumes from its ``.part`` file). Nothing is deleted unless ``mirror``: then files of messages
that are gone (deleted, or no longer visible) are removed; files voxbox did not write never are.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import mutagen

from voxbox.client.http import VoxboxClient
from voxbox.client.uploads import download_media

MANIFEST = ".voxbox-sync.json"
PAGE = 200
MAX_NAME = 120
# Names Windows reserves whatever the extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
_RESERVED |= {f"LPT{i}" for i in range(1, 10)}
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def safe_name(name: str, fallback: str) -> str:
    """``name`` as one path component that every common file system accepts."""
    name = unicodedata.normalize("NFC", _UNSAFE.sub("_", name)).strip().rstrip(". ")
    if not name or name in (".", ".."):
        name = fallback
    stem, dot, ext = name.rpartition(".")
    if (dot and stem.upper() in _RESERVED) or name.upper() in _RESERVED:
        name = f"_{name}"
    if len(name) > MAX_NAME:
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[: MAX_NAME - len(keep) - 1].rstrip(". ") + (f".{keep}" if keep else "")
    return name


@dataclass
class SyncReport:
    downloaded: list[Path] = field(default_factory=list)
    kept: int = 0  # already there from an earlier run
    removed: list[Path] = field(default_factory=list)
    untagged: list[Path] = field(default_factory=list)  # a format mutagen cannot tag


@dataclass(frozen=True)
class _Item:
    message_id: str
    media: dict[str, Any]
    voice: bool
    chat_title: str
    sender: str
    created_at: datetime


def sync(
    client: VoxboxClient,
    root: Path,
    *,
    mirror: bool = False,
    on_file: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> SyncReport:
    """Mirror the user's voice and audio messages into ``root`` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST
    manifest: dict[str, str] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    )
    report = SyncReport()
    taken = {root / p for p in manifest.values()}
    seen: set[str] = set()
    for item in _items(client):
        seen.add(item.message_id)
        known = manifest.get(item.message_id)
        if known is not None and (root / known).exists():
            report.kept += 1
            continue
        dest = _destination(root, item, taken)
        taken.add(dest)
        if on_file is not None:
            on_file(str(dest.relative_to(root)))
        dest.parent.mkdir(parents=True, exist_ok=True)
        download_media(
            client, item.media["id"], dest, "ogg" if item.voice else "original", on_progress
        )
        if not _tag(dest, item):
            report.untagged.append(dest)
        manifest[item.message_id] = dest.relative_to(root).as_posix()
        _save(manifest_path, manifest)  # after every file: an interrupted run loses nothing
        report.downloaded.append(dest)
    if mirror:
        for message_id in [m for m in manifest if m not in seen]:
            path = root / manifest.pop(message_id)
            if path.exists():
                path.unlink()
                report.removed.append(path)
        _save(manifest_path, manifest)
    return report


def _items(client: VoxboxClient) -> Iterator[_Item]:
    me = client.me()["handle"]
    for chat in client.chats()["chats"]:
        names = {m["handle"]: m["display_name"] for m in chat["members"]}
        others = [name for handle, name in names.items() if handle != me]
        title = chat.get("title") or (
            "Message yourself" if chat["kind"] == "self" else ", ".join(others) or chat["id"]
        )
        after = "0"  # before every id: the oldest page first
        while True:
            page = client.messages(chat["id"], after=after, limit=PAGE)
            for m in page["messages"]:
                media = m.get("media")
                if m["kind"] in ("voice", "audio") and media and media.get("state") == "ready":
                    yield _Item(
                        m["id"],
                        media,
                        m["kind"] == "voice",
                        title,
                        names.get(m["sender"], m["sender"]),
                        datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")),
                    )
            if not page["messages"] or not page.get("has_more"):
                break
            after = page["messages"][-1]["id"]


def _destination(root: Path, item: _Item, taken: set[Path]) -> Path:
    chat = root / safe_name(item.chat_title, "chat")
    if item.voice:
        at = item.created_at
        name = f"{at:%Y-%m-%d %H.%M.%S} {item.sender}.opus"
        folder = chat / "Voice Notes" / f"{at:%Y-%m}"
    else:
        name = item.media.get("filename") or f"audio-{item.message_id}"
        folder = chat / "Audio"
    dest = folder / safe_name(name, f"{item.message_id}.opus" if item.voice else item.message_id)
    n = 2
    while dest in taken or dest.exists():
        stem, suffix = os.path.splitext(dest.name)
        dest = dest.with_name(f"{stem.removesuffix(f' ({n - 1})')} ({n}){suffix}")
        n += 1
    return dest


def _tag(path: Path, item: _Item) -> bool:
    """Write title, artist, album and date tags; False when the format has no tags."""
    try:
        audio = mutagen.File(path, easy=True)
        if audio is None:
            return False
        if audio.tags is None:
            audio.add_tags()
        what = "Voice note" if item.voice else item.media.get("filename") or "Audio"
        audio["title"] = f"{what} from {item.sender}, {item.created_at:%Y-%m-%d %H:%M}"
        audio["artist"] = item.sender
        audio["album"] = item.chat_title
        audio["date"] = item.created_at.strftime("%Y-%m-%d")
        audio.save()
    except (mutagen.MutagenError, KeyError, ValueError, TypeError):
        return False
    return True


def _save(path: Path, manifest: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)
