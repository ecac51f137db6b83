"""A full disk is recognised however it surfaces: the OS, SQLite, PostgreSQL (issue 9, item 8)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import OperationalError

from support.disk import tmpfs
from voxbox.core.errors import is_disk_full


def test_a_real_full_disk_is_recognised_from_the_os_and_from_sqlite(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        db = sqlite3.connect(disk / "voxbox.db")
        db.execute("CREATE TABLE t (x BLOB)")
        with pytest.raises(sqlite3.OperationalError) as from_sqlite:
            for _ in range(100):
                db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
                db.commit()
        db.close()
        assert is_disk_full(from_sqlite.value)
        # As SQLAlchemy hands it on, and as an exception raised while handling it.
        wrapped = OperationalError("INSERT", {}, from_sqlite.value)
        assert is_disk_full(wrapped)
        with pytest.raises(OSError) as from_os, (disk / "filler").open("wb") as out:
            for _ in range(100):
                out.write(b"y" * 100_000)
                out.flush()
        assert is_disk_full(from_os.value)


def test_postgresql_disk_full_is_recognised() -> None:
    error = asyncpg.exceptions.DiskFullError("could not extend file: No space left on device")
    assert is_disk_full(error)


def test_other_errors_are_not_a_full_disk() -> None:
    assert not is_disk_full(ValueError("bad"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(PermissionError(13, "Permission denied"))
