"""The BlobStore protocol, blob keys, and the errors every implementation raises.

A blob store keeps immutable byte blobs under generated keys (see `blob_key`). Keys never come
from users: every method validates its key and refuses anything that is not a plain relative
path of lowercase segments, so a key can never name a file outside the store.

Implementations do their blocking I/O in worker threads; no method blocks the event loop.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

CHUNK_SIZE = 64 * 1024
"""Size of the chunks `BlobStore.open` yields (the last one may be shorter)."""

MAX_KEY_LENGTH = 512

_SEGMENT = re.compile(r"[a-z0-9_-][a-z0-9._-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"(?:[.-][a-z0-9_-]+)*")


class BlobError(Exception):
    """Base of the errors a blob store raises for a well-formed request."""


class BlobNotFound(BlobError, LookupError):
    """No blob is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob stored under key {key!r}")
        self.key = key


class RangeNotSatisfiable(BlobError):
    """The requested range starts at or after the end of the blob (HTTP 416).

    `size` is the blob's size, for the `Content-Range: bytes */size` header of the 416.
    """

    def __init__(self, key: str, start: int, size: int) -> None:
        super().__init__(f"range starting at {start} not satisfiable: {key!r} is {size} bytes")
        self.key = key
        self.start = start
        self.size = size


def validate_key(key: str) -> str:
    """Return `key` if it is a valid blob key, else raise ValueError.

    A key is a relative path of `/`-separated segments made of `[a-z0-9._-]`; no segment is
    empty or starts with a dot (so no `.`, `..` or hidden names, and implementations may use
    dot-names for their own temporary files); at most MAX_KEY_LENGTH characters. Lowercase
    only, so two keys never alias on a case-insensitive filesystem.
    """
    if not isinstance(key, str):
        raise ValueError(f"blob key must be a str, not {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"invalid blob key {key!r}: must be 1 to {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"invalid blob key {key!r}: segments must be non-empty, made of [a-z0-9._-] "
                "and not start with '.'"
            )
    return key


def blob_key(sha256_hex: str, suffix: str = "") -> str:
    """The key of a content-addressed blob: `ab/cd/abcd…(64 hex)` + suffix.

    `sha256_hex` is a lowercase hex SHA-256 digest (the two fan-out levels keep directories
    small on the local store); `suffix` is empty or like `.ogg`, `.mp3`, `-orig`.
    """
    if not _SHA256_HEX.fullmatch(sha256_hex):
        raise ValueError(f"not a lowercase hex sha256 digest: {sha256_hex!r}")
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"invalid blob key suffix {suffix!r}: use e.g. '.ogg' or '-orig'")
    return validate_key(f"{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}{suffix}")


def check_range(start: int, end: int | None) -> None:
    """ValueError unless 0 <= start and (end is None or start <= end)."""
    if start < 0:
        raise ValueError(f"range start must be >= 0, not {start}")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")


def resolve_range(key: str, size: int, start: int, end: int | None) -> tuple[int, int]:
    """Clip the inclusive byte range [start, end] to a blob of `size` bytes, as HTTP does.

    Returns (start, end) inclusive; for the whole of an empty blob that is (0, -1). `end` beyond
    the blob is clipped to its last byte; `start` at or past the end raises RangeNotSatisfiable
    unless the request is for the whole blob (start 0, end None), which always succeeds.
    """
    check_range(start, end)
    if start == 0 and end is None:
        return 0, size - 1
    if start >= size:
        raise RangeNotSatisfiable(key, start, size)
    return start, size - 1 if end is None else min(end, size - 1)


class BlobStream:
    """An open byte range of a blob: the range's metadata, then its bytes as an async iterator.

    Iterate it once (`async for chunk in stream`); the underlying file or connection is released
    when iteration ends, fails or is cancelled, or on `aclose()` (also `async with stream:`).
    """

    def __init__(self, key: str, size: int, start: int, end: int, chunks: AsyncIterator[bytes]):
        self.key = key
        self.size = size
        """Size of the whole blob."""
        self.start = start
        """First byte of the range."""
        self.end = end
        """Last byte of the range (inclusive); start - 1 when the range is empty."""
        self._chunks = chunks

    @property
    def length(self) -> int:
        """Number of bytes the stream yields (the Content-Length of the response)."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The value of an HTTP 206 `Content-Range` header for this range."""
        return f"bytes {self.start}-{self.end}/{self.size}"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    async def read_all(self) -> bytes:
        """The whole range in memory: for tests and small blobs only."""
        return b"".join([chunk async for chunk in self])

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def chunks_from_thread(
    key: str,
    read: Callable[[int], bytes],
    close: Callable[[], None],
    length: int,
    chunk_size: int = CHUNK_SIZE,
) -> AsyncIterator[bytes]:
    """Yield `length` bytes from the blocking `read(n)`, each call in a worker thread; then
    `close()`, also in a thread, whether iteration finished, failed or was cancelled.

    A lock keeps `close` from running while a `read` is still in flight in another thread (a
    cancelled `to_thread` does not stop its thread), so the descriptor is never closed under it.
    """
    lock = threading.Lock()

    def locked_read(n: int) -> bytes:
        with lock:
            return read(n)

    def locked_close() -> None:
        with lock:
            close()

    remaining = length
    try:
        while remaining > 0:
            data = await asyncio.to_thread(locked_read, min(chunk_size, remaining))
            if not data:
                raise BlobError(f"blob {key!r} ended {remaining} bytes early")
            remaining -= len(data)
            yield data
    finally:
        await asyncio.to_thread(locked_close)


class BlobStore(Protocol):
    """Immutable blobs under generated keys. Every method raises ValueError for an invalid key.

    Writes are atomic: a reader sees either no blob or the whole blob, never part of one, and a
    write that fails leaves nothing behind. Writing a key that exists replaces the blob (callers
    use content-addressed keys, so the bytes are the same).
    """

    async def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Store the bytes of the local file `path` under `key`.

        With `move=True` the store takes the file over: `path` is gone once this returns (the
        local store renames it into place when it is on the same filesystem, which costs no
        copy). If it raises, `path` is left as it was. Without `move`, `path` is only read.
        FileNotFoundError if `path` does not exist.
        """
        ...

    async def open(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        """Open bytes [start, end] (inclusive, as in HTTP Range; None: to the end) for streaming.

        `end` past the blob is clipped. Raises BlobNotFound, or RangeNotSatisfiable when `start`
        is at or past the end of the blob (except the whole of an empty blob, which opens as an
        empty stream). The bytes are read in chunks of about CHUNK_SIZE as they are iterated.
        """
        ...

    async def size(self, key: str) -> int | None:
        """Size of the blob in bytes, or None if there is no blob under `key`."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under `key`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob under `key`; does nothing if there is none."""
        ...

    async def fetch_to_file(self, key: str, path: Path) -> None:
        """Write the blob to the local file `path` (created or replaced; its directory must
        exist). Raises BlobNotFound, and then leaves `path` untouched."""
        ...

    async def close(self) -> None:
        """Release connections and pools. The store must not be used afterwards."""
        ...
