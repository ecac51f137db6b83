"""Reading an uploaded export safely: a zip (WhatsApp's, or a Telegram export folder zipped), a
bare chat.txt, or a bare result.json.

Nothing is unpacked by the archive's own names: a member is read only when the chat names it,
into a file of the import's work directory whose name this module makes. Names that try to leave
the archive (``../``, absolute paths, drive letters), members that expand past the limits (a zip
bomb), and too many members are refused or skipped with a reason.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from voxbox.config import ImportSettings
from voxbox.core.errors import Invalid, PayloadTooLarge

_UNSAFE = re.compile(r"(^|/)\.\.(/|$)|^/|^[A-Za-z]:|\\|\x00")


class Unreadable(Exception):
    """A member the chat names could not be taken (missing, unsafe, too big); the reason."""


@dataclass
class Archive:
    """The chat file of an export and, when it came zipped, the members beside it."""

    kind: str  # "whatsapp" | "telegram"
    chat: bytes
    name: str  # the chat file's name, or the upload's for a bare file
    base: str = ""  # the folder of the chat file inside the zip: attachments are relative to it
    zf: zipfile.ZipFile | None = None
    limits: ImportSettings = field(default_factory=ImportSettings)
    unpacked: int = 0
    unsafe: list[str] = field(default_factory=list)

    def extract(self, name: str, dest: Path) -> Path:
        """Copy the member ``name`` (relative to the chat file) to ``dest``; Unreadable if
        that cannot be done safely."""
        if self.zf is None:
            raise Unreadable(f"{name} is not here: only the chat file was uploaded")
        if _UNSAFE.search(name):
            raise Unreadable(f"{name!r} names a file outside the archive")
        member = posixpath.normpath(posixpath.join(self.base, name)) if self.base else name
        try:
            info = self.zf.getinfo(member)
        except KeyError:
            raise Unreadable(f"{name} is not in the archive") from None
        if member in self.unsafe:
            raise Unreadable(f"{name!r} names a file outside the archive")
        _check_member(info, self.limits)
        if self.unpacked + info.file_size > self.limits.max_unpacked_bytes:
            raise Unreadable(f"{name}: the archive unpacks to more than this server takes")
        written = 0
        with self.zf.open(info) as src, dest.open("wb") as out:
            while chunk := src.read(1024 * 1024):
                written += len(chunk)
                if written > info.file_size:  # the header lied: stop before it fills the disk
                    raise Unreadable(f"{name} holds more than it says (a zip bomb?)")
                out.write(chunk)
        self.unpacked += written
        return dest


def _check_member(info: zipfile.ZipInfo, limits: ImportSettings) -> None:
    compressed = max(info.compress_size, 1)
    if info.file_size > 1024 * 1024 and info.file_size / compressed > limits.max_ratio:
        raise Unreadable(
            f"{info.filename} expands {info.file_size // compressed}-fold (a zip bomb?)"
        )


def open_export(path: Path, upload_name: str, limits: ImportSettings) -> Archive:
    """What the uploaded file at ``path`` holds; Invalid (422) when it is not a chat export."""
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04"):
        return _from_zip(path, upload_name, limits)
    data = path.read_bytes()
    if len(data) > limits.max_unpacked_bytes:
        raise PayloadTooLarge("The chat file is larger than this server takes.")
    kind = "telegram" if data.lstrip()[:1] == b"{" else "whatsapp"
    return Archive(kind, data, upload_name, limits=limits)


def _from_zip(path: Path, upload_name: str, limits: ImportSettings) -> Archive:
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise Invalid(f"The archive cannot be read: {exc}.") from None
    if len(infos) > limits.max_files:
        raise Invalid(
            f"The archive holds {len(infos)} files; this server takes {limits.max_files}."
        )
    unsafe = [i.filename for i in infos if _UNSAFE.search(i.filename)]
    names = [i.filename for i in infos if not i.is_dir() and i.filename not in unsafe]
    telegram = sorted((n for n in names if PurePosixPath(n).name == "result.json"), key=len)
    texts = sorted((n for n in names if n.lower().endswith(".txt")), key=_chat_txt_rank)
    if telegram:
        chosen, kind = telegram[0], "telegram"
    elif texts:
        chosen, kind = texts[0], "whatsapp"
    else:
        raise Invalid(
            "The archive holds no chat: no .txt (WhatsApp) and no result.json (Telegram)."
        )
    info = zf.getinfo(chosen)
    try:
        _check_member(info, limits)
    except Unreadable as exc:
        raise Invalid(f"The archive is refused: {exc}.") from None
    if info.file_size > limits.max_unpacked_bytes:
        raise PayloadTooLarge("The chat file is larger than this server takes.")
    with zf.open(info) as f:
        chat = f.read(info.file_size + 1)
    if len(chat) > info.file_size:
        raise Invalid(f"The archive is refused: {chosen} holds more than it says (a zip bomb?).")
    base = posixpath.dirname(chosen)
    title_source = chosen if PurePosixPath(chosen).name != "_chat.txt" else upload_name
    return Archive(kind, chat, title_source, base, zf, limits, len(chat), unsafe)


def _chat_txt_rank(name: str) -> tuple[int, int]:
    """WhatsApp's own names first (iOS ``_chat.txt``, Android ``WhatsApp Chat with X.txt``)."""
    stem = PurePosixPath(name).name
    known = stem == "_chat.txt" or stem.lower().startswith("whatsapp chat")
    return (0 if known else 1, len(name))


_TITLE_PREFIX = re.compile(
    r"^(whatsapp chat( with|\s*-)?|chat de whatsapp con|whatsapp-chat mit"
    r"|discussion whatsapp avec)\s*",
    re.IGNORECASE,
)


def whatsapp_title(name: str) -> str:
    """The chat's title from its file name: "WhatsApp Chat with Mum.txt" -> "Mum"."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    title = _TITLE_PREFIX.sub("", stem).strip(" -_")
    return title or "Imported chat"
