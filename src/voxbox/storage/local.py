"""LocalBlobStore: blobs as files under a root directory, written atomically and durably."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from voxbox.storage.base import (
    BlobNotFound,
    BlobStream,
    check_range,
    chunks_from_thread,
    resolve_range,
    validate_key,
)

_COPY_BUFFER = 1024 * 1024
_TEMP_PREFIX = ".tmp-"  # keys never have a segment starting with "." (see validate_key)


def _fsync_path(path: Path | str, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files `root/<key>`.

    A write goes to a temp file in the blob's own directory, is fsynced, renamed into place
    (`os.replace`, atomic on POSIX) and the directory fsynced: after a crash a blob is either
    whole or absent. Reads hold the file open, so deleting a blob never cuts off a stream that is
    already being served.
    """

    def __init__(self, root: Path) -> None:
        """Creates `root` (and its parents) if missing; this blocks, so call it at start-up."""
        self.root = Path(os.path.abspath(root))
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """The file of `key`. ValueError for an invalid key or one that would leave the root."""
        validate_key(key)
        path = os.path.normpath(os.path.join(self.root, key))
        # validate_key already rules out "..", absolute keys and empty segments; this check is
        # the last line of defence should those rules ever be loosened.
        if os.path.dirname(path) == "" or os.path.commonpath([self.root, path]) != str(self.root):
            raise ValueError(f"blob key {key!r} leaves the storage root")
        if path == str(self.root):
            raise ValueError(f"blob key {key!r} names the storage root")
        return Path(path)

    # -- writing -------------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        dest = self.path_for(key)
        await asyncio.to_thread(self._put_file, dest, Path(path), move)

    def _put_file(self, dest: Path, src: Path, move: bool) -> None:
        self._make_dirs(dest.parent)
        if move:
            # The writer of `src` may not have synced it: without this, a crash right after the
            # rename could leave an empty or partial file under the blob's name.
            _fsync_path(src)
            try:
                os.replace(src, dest)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                # Another filesystem: copy below, then remove the source.
            else:
                _fsync_path(dest.parent, directory=True)
                return
        with open(src, "rb") as source:
            self._write_atomically(dest, source, durable=True)
        _fsync_path(dest.parent, directory=True)
        if move:
            os.unlink(src)

    @staticmethod
    def _write_atomically(dest: Path, source: BinaryIO, *, durable: bool) -> None:
        """Copy `source` into a temp file next to `dest`, then rename it over `dest`.

        If anything fails (a read error, a full disk, a failed fsync) the temp file is removed
        and `dest` is left as it was."""
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=_TEMP_PREFIX)
        try:
            with open(fd, "wb") as out:
                shutil.copyfileobj(source, out, _COPY_BUFFER)
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory` and missing parents below the root, each made durable in its
        parent (a new blob is only durable if its directory's entry is too)."""
        if directory.is_dir():
            return
        current = self.root
        for part in directory.relative_to(self.root).parts:
            current = current / part
            try:
                os.mkdir(current)
            except FileExistsError:
                continue
            _fsync_path(current.parent, directory=True)

    # -- reading -------------------------------------------------------------------------------

    async def open(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        path = self.path_for(key)
        check_range(start, end)
        f, size, first, last = await asyncio.to_thread(self._open, key, path, start, end)
        chunks = chunks_from_thread(key, f.read, f.close, last - first + 1)
        return BlobStream(key, size, first, last, chunks)

    @staticmethod
    def _open(key: str, path: Path, start: int, end: int | None) -> tuple[BinaryIO, int, int, int]:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the stream, or below on error
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BlobNotFound(key)
            first, last = resolve_range(key, st.st_size, start, end)
            f.seek(first)
        except BaseException:
            f.close()
            raise
        return f, st.st_size, first, last

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        return await asyncio.to_thread(self._size, path)

    @staticmethod
    def _size(path: Path) -> int | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def fetch_to_file(self, key: str, path: Path) -> None:
        src = self.path_for(key)
        await asyncio.to_thread(self._fetch_to_file, key, src, Path(path))

    def _fetch_to_file(self, key: str, src: Path, dest: Path) -> None:
        try:
            source = open(src, "rb")  # noqa: SIM115 - closed right below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        with source:
            # A scratch copy for the pipeline: atomic (no half file under `dest`), not fsynced.
            self._write_atomically(dest, source, durable=False)

    # -- deleting ------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(self._delete, path)

    @staticmethod
    def _delete(path: Path) -> None:
        # Empty fan-out directories are kept: removing them would race with a concurrent put
        # into the same directory, and there are at most 65,536 of them.
        if path.is_dir():
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(path)

    async def close(self) -> None:
        return None
