"""Sending files with tus and downloading media, both resumable.

Uploads (:class:`FileUpload`, :func:`upload_file`, and :func:`send_file`, which uploads and
posts, resumable across processes): tus 1.0.0 creation, then one PATCH per chunk.
A broken connection, a 5xx or a ``409`` (the client's offset is not the server's) does not fail
the upload: the client asks the server where it stands (``HEAD``) and continues from there, up to
:data:`MAX_ATTEMPTS` times in a row. A later process can continue an upload from its URL.

Downloads (:func:`download_media`): the body goes to ``<dest>.part`` and is renamed to ``dest``
when complete. The response's ETag is kept in ``<dest>.part.etag``, so a later call continues the
partial file with ``Range`` + ``If-Range``; if the content changed meanwhile the server sends all
of it again and the partial file is replaced.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import httpx

from voxbox.client.config import (
    PendingUpload,
    forget_pending_upload,
    load_pending_upload,
    save_pending_upload,
)
from voxbox.client.http import (
    DEFAULT_CHUNK_SIZE,
    MediaFormat,
    MessageKind,
    ProgressCallback,
    VoxboxAPIError,
    VoxboxError,
    upload_id_of,
)

if TYPE_CHECKING:
    from voxbox.client.http import VoxboxClient

# Consecutive failed PATCHes (each followed by a HEAD) before giving up.
MAX_ATTEMPTS = 6
# Seconds before the n-th retry: 0.5, 1, 2, 4, 8 ...
RETRY_BASE_DELAY = 0.5
# Progress is reported for blocks of this size while a chunk is being sent.
SEND_BLOCK = 64 * 1024
# Statuses after which retrying the same PATCH can succeed (tus-js-client does the same).
_RETRY_STATUSES = frozenset({409, 423, 500, 502, 503, 504})
# Statuses meaning "this upload is no more" (410 Gone: expired, tus expiration extension).
GONE_STATUSES = frozenset({404, 410})

PART_SUFFIX = ".part"
ETAG_SUFFIX = ".part.etag"


class FileUpload:
    """The tus upload of one local file, created anew or continued.

    Use :meth:`create` or :meth:`resume`, then :meth:`run`. ``offset`` and ``length`` are what
    the server acknowledged. The file must not change while it is being uploaded.
    """

    def __init__(
        self,
        client: VoxboxClient,
        path: str | Path,
        *,
        kind: MessageKind,
        chat_id: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.client = client
        self.path = Path(path)
        self.kind = kind
        self.chat_id = chat_id
        self.chunk_size = chunk_size
        self.length = self.path.stat().st_size
        self.offset = 0
        self.url: str | None = None
        self._sleep = sleep

    @property
    def upload_id(self) -> str:
        if self.url is None:
            raise RuntimeError("the upload was neither created nor resumed")
        return upload_id_of(self.url)

    def metadata(self) -> dict[str, str]:
        """The tus metadata sent at creation."""
        content_type, _ = mimetypes.guess_type(self.path.name)
        metadata = {
            "filename": self.path.name,
            "content_type": content_type or "application/octet-stream",
            "kind": self.kind,
        }
        if self.chat_id is not None:
            metadata["chat_id"] = self.chat_id
        return metadata

    def create(self) -> str:
        """Create the upload on the server; returns its URL."""
        self.url = self.client.create_upload(self.length, self.metadata())
        self.offset = 0
        return self.url

    def resume(self, url: str) -> bool:
        """Continue the upload at ``url`` from the server's offset.

        Returns ``False`` when it cannot be continued: the server no longer has it (404/410) or
        it is not an upload of this file's length (then it is discarded). Other errors raise.
        """
        try:
            offset, length = self.client.upload_offset(url)
        except VoxboxAPIError as exc:
            if exc.status in GONE_STATUSES:
                return False
            raise
        if length != self.length or offset > self.length:
            with contextlib.suppress(VoxboxAPIError):
                self.client.delete_upload(url)
            return False
        self.url, self.offset = url, offset
        return True

    def run(self, on_progress: ProgressCallback | None = None) -> str:
        """PATCH the rest of the file; returns the upload id once the server has every byte.

        ``on_progress(offset, length)`` is called as blocks are sent, and with the server's
        offset after each chunk (which can go back after a failed chunk).
        """
        if self.url is None:
            raise RuntimeError("call create() or resume() first")
        failures = 0
        with open(self.path, "rb") as f:
            while self.offset < self.length:
                f.seek(self.offset)
                chunk = f.read(min(self.chunk_size, self.length - self.offset))
                if not chunk:
                    raise VoxboxError(
                        "The file changed", f"{self.path} is shorter than when the upload started"
                    )
                try:
                    new_offset = self.client.patch_upload(
                        self.url,
                        self.offset,
                        _blocks(chunk, self.offset, self.length, on_progress),
                        size=len(chunk),
                    )
                except (VoxboxAPIError, httpx.TransportError) as exc:
                    failures += 1
                    retryable = (
                        isinstance(exc, httpx.TransportError) or exc.status in _RETRY_STATUSES
                    )
                    if not retryable or failures >= MAX_ATTEMPTS:
                        raise
                    if not isinstance(exc, VoxboxAPIError) or exc.status != 409:
                        self._sleep(RETRY_BASE_DELAY * 2 ** (failures - 1))
                    self._sync(failures)
                else:
                    if not self.offset < new_offset <= self.length:
                        raise VoxboxError(
                            "Unexpected response",
                            f"the server moved the upload from {self.offset} to {new_offset}",
                        )
                    self.offset = new_offset
                    failures = 0
                if on_progress is not None:
                    on_progress(self.offset, self.length)
        return self.upload_id

    def _sync(self, failures: int) -> None:
        """Take the server's offset after a failed PATCH (retrying the HEAD itself)."""
        assert self.url is not None
        while True:
            try:
                offset, _ = self.client.upload_offset(self.url)
            except (VoxboxAPIError, httpx.TransportError) as exc:
                failures += 1
                transient = isinstance(exc, httpx.TransportError) or exc.status >= 500
                if not transient or failures >= MAX_ATTEMPTS:
                    raise
                self._sleep(RETRY_BASE_DELAY * 2 ** (failures - 1))
                continue
            if offset > self.length:
                raise VoxboxError("Unexpected response", f"upload offset {offset} past the end")
            self.offset = offset
            return


def _blocks(
    chunk: bytes, start: int, total: int, on_progress: ProgressCallback | None
) -> Iterator[bytes]:
    """``chunk`` in blocks, reporting ``start + sent`` before each further block goes out."""
    view = memoryview(chunk)
    for at in range(0, len(chunk), SEND_BLOCK):
        if on_progress is not None and at:
            on_progress(start + at, total)
        yield bytes(view[at : at + SEND_BLOCK])


def upload_file(
    client: VoxboxClient,
    path: str | Path,
    *,
    kind: MessageKind,
    chat_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
    resume_url: str | None = None,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Upload ``path`` with tus; returns the upload id, ready for :meth:`send_upload`.

    With ``resume_url`` (an upload of this file from an earlier, interrupted call) it continues
    from the server's offset; when the server no longer has that upload, a new one is created.
    ``on_created(url)`` is called when a new upload was created, before any byte is sent:
    keep the URL to resume after a crash.
    """
    upload = FileUpload(client, path, kind=kind, chat_id=chat_id, chunk_size=chunk_size)
    if resume_url is None or not upload.resume(resume_url):
        url = upload.create()
        if on_created is not None:
            on_created(url)
    return upload.run(on_progress)


class SendProgress(Protocol):
    """What :func:`send_file` tells its caller as it goes (the CLI shows it)."""

    def resuming(self, offset: int, length: int | None) -> None: ...

    def uploading(
        self, length: int | None, offset: int
    ) -> AbstractContextManager[ProgressCallback]:
        """A context around the upload; what it yields is called with (done, total)."""
        ...

    def processing(self) -> AbstractContextManager[object]: ...

    def sent_already(self) -> None: ...


class _Silent:
    def resuming(self, offset: int, length: int | None) -> None:
        pass

    @contextlib.contextmanager
    def uploading(self, length: int | None, offset: int) -> Iterator[ProgressCallback]:
        yield lambda done, total: None

    def processing(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()

    def sent_already(self) -> None:
        pass


# Answers to posting an upload that mean the file will never be accepted as it is.
REFUSED = frozenset({413, 415, 422})


def send_file(
    client: VoxboxClient,
    chat_id: str,
    path: str | Path,
    *,
    voice: bool,
    client_id: str | None = None,
    reply_to: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume_key: str | None = None,
    progress: SendProgress | None = None,
) -> dict[str, Any]:
    """Upload a file and post it to a chat as a voice message (``voice``) or an audio file;
    returns the message.

    With ``resume_key`` (see ``config.upload_key``) an interrupted send continues where it
    stopped, in this process or a later one: the upload's URL and the message's client_id are
    kept under that key until the message is posted. If the server no longer has the upload,
    the message may have been posted just before the interruption; posting again with the
    same client_id answers with it, so nothing is ever posted twice. Without a key, reuse
    ``client_id`` when retrying.
    """
    show = progress or _Silent()
    kind: MessageKind = "voice" if voice else "audio"
    pending = load_pending_upload(resume_key) if resume_key is not None else None
    upload = FileUpload(client, path, kind=kind, chat_id=chat_id, chunk_size=chunk_size)
    message: dict[str, Any] | None = None
    if pending is not None:
        if upload.resume(pending.upload_url):
            show.resuming(upload.offset, upload.length)
        else:
            message = _posted_already(client, chat_id, pending, kind, reply_to)
    if message is not None:
        show.sent_already()
    else:
        if upload.url is None:
            client_id = pending.client_id if pending is not None else client_id
            pending = PendingUpload(upload.create(), client_id or uuid.uuid4().hex)
            if resume_key is not None:
                save_pending_upload(resume_key, pending, path=Path(path))
        assert pending is not None
        with show.uploading(upload.length, upload.offset) as on_progress:
            upload.run(on_progress)
        with show.processing():
            message = _post_upload(client, chat_id, upload, pending, kind, reply_to, resume_key)
    if resume_key is not None:
        forget_pending_upload(resume_key)
    return message


def _posted_already(
    client: VoxboxClient,
    chat_id: str,
    pending: PendingUpload,
    kind: MessageKind,
    reply_to: str | None,
) -> dict[str, Any] | None:
    """The message an earlier run posted from an upload the server no longer has, if any.

    Posting it again with the same client_id answers with that message (and does nothing).
    Any refusal means it was not posted.
    """
    try:
        return client.send_upload(
            chat_id,
            upload_id_of(pending.upload_url),
            kind=kind,
            client_id=pending.client_id,
            reply_to=reply_to,
        )
    except VoxboxAPIError as exc:
        if 400 <= exc.status < 500 and exc.status not in (401, 429):
            return None
        raise


def _post_upload(
    client: VoxboxClient,
    chat_id: str,
    upload: FileUpload,
    pending: PendingUpload,
    kind: MessageKind,
    reply_to: str | None,
    resume_key: str | None,
) -> dict[str, Any]:
    """Post the complete upload as a message; forget it if the server refuses the file."""
    try:
        return client.send_upload(
            chat_id, upload.upload_id, kind=kind, client_id=pending.client_id, reply_to=reply_to
        )
    except VoxboxAPIError as exc:
        if exc.status in REFUSED:
            # Sending it again would be refused again: nothing to resume.
            if resume_key is not None:
                forget_pending_upload(resume_key)
            with contextlib.suppress(VoxboxAPIError, httpx.HTTPError):
                client.delete_upload(pending.upload_url)
        raise


# -- downloads --------------------------------------------------------------------------------


def download_export(
    client: VoxboxClient,
    chat_id: str,
    dest: str | Path,
    *,
    media: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Save a chat's export (a zip) to ``dest``: written to ``<dest>.part``, renamed when
    complete, so ``dest`` is never a cut-off zip. The export is made as it is sent, so an
    interrupted one starts over."""
    with client.stream_export(chat_id, media=media) as response:
        return save_response(response, Path(dest), on_progress)


def save_response(
    response: httpx.Response, dest: Path, on_progress: ProgressCallback | None = None
) -> Path:
    """Save a streamed response's body to ``dest``: written to ``<dest>.part``, renamed when
    complete, so ``dest`` is never cut off."""
    part = dest.with_name(dest.name + PART_SUFFIX)
    total = int(response.headers.get("Content-Length", 0)) or None
    with part.open("wb") as out:
        done = 0
        for chunk in response.iter_bytes():
            out.write(chunk)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    os.replace(part, dest)
    return dest


def part_paths(dest: Path) -> tuple[Path, Path]:
    """Where a download to ``dest`` keeps its partial body and that body's ETag."""
    return dest.with_name(dest.name + PART_SUFFIX), dest.with_name(dest.name + ETAG_SUFFIX)


def _strong_etag(response: httpx.Response) -> str | None:
    """The response's ETag if it is a strong one (weak ones cannot validate a Range)."""
    etag = response.headers.get("etag")
    return etag if etag and not etag.startswith("W/") else None


def _content_range_start(response: httpx.Response) -> tuple[int, int | None] | None:
    """``(first byte, complete length)`` from a 206's ``Content-Range: bytes a-b/len``."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("content-range", ""))
    if match is None:
        return None
    total = match.group(2)
    return int(match.group(1)), None if total == "*" else int(total)


def download_media(
    client: VoxboxClient,
    media_id: str,
    dest: str | Path,
    format: MediaFormat = "original",
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download media content to ``dest``; returns ``dest``.

    The bytes are streamed to ``<dest>.part`` and renamed over ``dest`` once complete (so
    ``dest`` is replaced if it exists; callers that must not overwrite check first). If an
    earlier call left a ``.part`` with a strong ETag, only the missing bytes are requested,
    and only if the content still has that ETag. ``on_progress(done, total)`` reports bytes
    (``total`` ``None`` when the server does not say).
    """
    dest = Path(dest)
    part, etag_file = part_paths(dest)
    have = part.stat().st_size if part.exists() else 0
    etag = _read_etag(etag_file) if have else None
    headers = {"Range": f"bytes={have}-", "If-Range": etag} if have and etag else {}
    try:
        with client.stream_media(media_id, format, headers=headers) as response:
            _receive(response, part, etag_file, etag, have, on_progress)
    except (_StalePart, VoxboxAPIError) as exc:
        # 416 "Range not satisfiable", or a range of other content than the partial file's:
        # what we have is not a prefix of the content. Start over, once.
        if not headers or (isinstance(exc, VoxboxAPIError) and exc.status != 416):
            raise
        part.unlink(missing_ok=True)
        etag_file.unlink(missing_ok=True)
        return download_media(client, media_id, dest, format, on_progress)
    os.replace(part, dest)
    etag_file.unlink(missing_ok=True)
    return dest


class _StalePart(VoxboxError):
    """A 206 answer that does not continue the partial file."""


def _read_etag(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _receive(
    response: httpx.Response,
    part: Path,
    etag_file: Path,
    etag: str | None,
    have: int,
    on_progress: ProgressCallback | None,
) -> None:
    """Write the body to ``part``: appended after ``have`` bytes for a 206 that matches what
    was asked, else from the start. Raises when the body ends short of its announced size."""
    start = 0
    total: int | None = None
    if response.status_code == 206:
        content_range = _content_range_start(response)
        got_etag = _strong_etag(response)
        if content_range is None or content_range[0] != have or (got_etag and got_etag != etag):
            raise _StalePart("Unexpected response", "the server sent another range than asked")
        start, total = have, content_range[1]
    elif response.status_code != 200:
        raise VoxboxError("Unexpected response", f"status {response.status_code} for media")
    else:
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else None
        etag_file.unlink(missing_ok=True)
        new_etag = _strong_etag(response)
        if new_etag:
            etag_file.write_text(new_etag, encoding="utf-8")

    done = start
    with _open_part(part, append=start > 0) as f:
        if on_progress is not None:
            on_progress(done, total)
        for block in response.iter_bytes():
            f.write(block)
            done += len(block)
            if on_progress is not None:
                on_progress(done, total)
        f.flush()
        os.fsync(f.fileno())
    if total is not None and done != total:
        raise VoxboxError("Download incomplete", f"got {done} of {total} bytes; run it again")


def _open_part(part: Path, *, append: bool) -> IO[bytes]:
    part.parent.mkdir(parents=True, exist_ok=True)
    return open(part, "ab" if append else "wb")


# -- file names -------------------------------------------------------------------------------

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com\d|lpt\d)(\..*)?")
MAX_FILENAME = 200  # bytes: file systems allow 255, and ".part.etag" is appended


def safe_filename(name: str | None, fallback: str) -> str:
    """A file name safe to create in the current directory from a name someone else chose.

    Keeps only the last path component, drops control and reserved characters, leading dots
    (no hidden files, no ``..``) and trailing dots/spaces, and caps the length in bytes while
    keeping the extension. Falls back to ``fallback`` when nothing usable is left.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").rstrip(". ")
    if not name or _RESERVED.fullmatch(name):
        name = fallback
    if len(name.encode()) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = _cut(stem, MAX_FILENAME - len(ext.encode()) - 1) + "." + ext
        else:
            name = _cut(name, MAX_FILENAME)
    return name


def _cut(text: str, size: int) -> str:
    """The longest prefix of ``text`` of at most ``size`` UTF-8 bytes."""
    return text.encode()[:size].decode("utf-8", "ignore")


def download_name(media: Mapping[str, Any], format: MediaFormat) -> str:
    """The default file name for downloading ``media`` in ``format``: its own (sanitized)
    filename, with the extension of the format when converted."""
    fallback = f"{media.get('kind') or 'media'}-{media.get('id')}"
    raw = media.get("filename")
    name = safe_filename(raw if isinstance(raw, str) else None, fallback)
    if format == "original":
        return name
    return safe_filename(f"{Path(name).stem}.{format}", f"{fallback}.{format}")
