"""Room on the server's own disk.

New files (uploads, imports, restores, backups) are refused while a directory they may land in
has less than ``limits.min_free_disk_bytes`` free: those last bytes are kept for the database,
so logins, texts and deletes (which free space) keep working when users fill the disk.

When something else fills the disk to the last byte, a write fails (a 507); then the
``DiskReserve`` file, ``limits.disk_reserve_bytes`` set aside at start-up, is deleted, so the
database has room again for logins, texts and deletes. It is set aside again once the disk has
room for it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from voxbox.core.errors import InsufficientStorage
from voxbox.storage import LocalBlobStore

if TYPE_CHECKING:
    from voxbox.core.backends import Backends

log = logging.getLogger(__name__)

# While a body streams in, the free space is measured again after this many bytes.
DISK_CHECK_EVERY = 1024 * 1024


def _local_dirs(b: Backends) -> set[Path]:
    """The local directories new bytes land in: the spool, local blobs, the SQLite file."""
    dirs = {b.spool_dir}
    if isinstance(b.store, LocalBlobStore):
        dirs.add(b.store.root)
    if b.settings.is_sqlite:
        dirs.add(b.settings.sqlite_path.parent)
    return dirs


def check_disk(b: Backends, incoming: int = 0) -> None:
    """InsufficientStorage unless ``incoming`` bytes leave ``limits.min_free_disk_bytes`` free
    on every local directory they may land in."""
    keep = b.settings.limits.min_free_disk_bytes
    for directory in _local_dirs(b):
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            continue  # not created yet: nothing to measure
        if free - incoming < keep:
            raise InsufficientStorage(
                "The server is out of disk space: it cannot take new files now. Deleting "
                "drafts and messages still works; ask its operator to free space."
            )


class DiskReserve:
    """A file of ``size`` bytes that holds space for the database until a full disk needs it."""

    def __init__(self, path: Path, size: int, keep_free: int) -> None:
        self.path, self.size, self.keep_free = path, size, keep_free

    def ensure(self) -> bool:
        """Set the space aside, if it is not already and the disk can spare it (``size`` and
        ``keep_free`` more); whether it is set aside. Blocks: run it in a thread."""
        if not self.size:
            return False
        if self.path.exists():
            return True
        if shutil.disk_usage(self.path.parent).free < self.size + self.keep_free:
            return False
        partial = self.path.with_suffix(".partial")
        try:
            with partial.open("wb") as out:
                try:
                    os.posix_fallocate(out.fileno(), 0, self.size)
                except OSError as exc:  # a filesystem without fallocate: write it out
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    for _ in range(0, self.size, 1024 * 1024):
                        out.write(bytes(1024 * 1024))
            partial.replace(self.path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            log.warning("could not set aside %d bytes of disk for the database: %s", self.size, exc)
            return False
        return True

    def release(self) -> None:
        """The disk is full: give the space back, for the database's next writes."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        log.error(
            "the disk is full: released the %d bytes set aside at %s, so logins, texts and "
            "deletes still work; free space on this disk",
            self.size,
            self.path,
        )
