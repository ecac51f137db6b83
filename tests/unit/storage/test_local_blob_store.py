"""What is particular to LocalBlobStore: the file layout, atomic and durable writes that leave
nothing behind when they fail, moves, confinement to the root, and open files."""

from __future__ import annotations

import asyncio
import errno
import gc
import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import pytest

from voxbox.storage import BlobNotFound, LocalBlobStore, blob_key
from voxbox.storage import local as local_module

DATA = os.urandom(300_000)
KEY = blob_key(hashlib.sha256(DATA).hexdigest(), ".ogg")


def files_under(root: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )


def contents(path: Path) -> bytes:
    return path.read_bytes()


def exists(path: Path) -> bool:
    return path.exists()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "upload.part"
    path.write_bytes(DATA)
    return path


async def test_layout_is_root_slash_key(local_store: LocalBlobStore, src: Path) -> None:
    await local_store.put_file(KEY, src)
    digest = hashlib.sha256(DATA).hexdigest()
    assert files_under(local_store.root) == [f"{digest[:2]}/{digest[2:4]}/{digest}.ogg"]
    assert local_store.path_for(KEY) == local_store.root / KEY
    assert contents(local_store.root / KEY) == DATA


def failing_fsync(fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device (simulated)")


async def test_a_put_that_fails_before_it_is_durable_leaves_nothing(
    local_store: LocalBlobStore, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module.os, "fsync", failing_fsync)
    for move in (False, True):
        with pytest.raises(OSError, match="simulated"):
            await local_store.put_file(KEY, src, move=move)
        assert contents(src) == DATA  # a failed move leaves the source where it was
    monkeypatch.undo()
    assert not await local_store.exists(KEY)
    assert files_under(local_store.root) == []  # no blob, no temp file


async def test_a_put_that_fails_midway_leaves_nothing_and_keeps_the_old_blob(
    local_store: LocalBlobStore, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old"
    old.write_bytes(b"the blob as it was")
    await local_store.put_file(KEY, old)

    def copy_half_then_fail(fsrc: BinaryIO, fdst: BinaryIO, length: int = 0) -> None:
        fdst.write(fsrc.read(len(DATA) // 2))
        raise OSError(errno.EIO, "Input/output error (simulated)")

    monkeypatch.setattr(local_module.shutil, "copyfileobj", copy_half_then_fail)
    with pytest.raises(OSError, match="simulated"):
        await local_store.put_file(KEY, src)
    monkeypatch.undo()

    assert files_under(local_store.root) == [KEY]
    assert contents(local_store.root / KEY) == b"the blob as it was"


async def test_a_source_that_vanishes_stores_nothing(
    local_store: LocalBlobStore, src: Path
) -> None:
    os.unlink(src)
    with pytest.raises(FileNotFoundError):
        await local_store.put_file(KEY, src)
    assert files_under(local_store.root) == []


async def test_move_renames_on_the_same_filesystem(local_store: LocalBlobStore, src: Path) -> None:
    inode = os.stat(src).st_ino
    await local_store.put_file(KEY, src, move=True)
    assert not exists(src)
    assert os.stat(local_store.root / KEY).st_ino == inode  # renamed, not copied


async def test_move_copies_across_filesystems(
    local_store: LocalBlobStore, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def replace(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
        if Path(a) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link (simulated)")
        real_replace(a, b)

    monkeypatch.setattr(local_module.os, "replace", replace)
    await local_store.put_file(KEY, src, move=True)
    monkeypatch.undo()
    assert not exists(src)
    assert contents(local_store.root / KEY) == DATA
    assert files_under(local_store.root) == [KEY]


async def test_a_stream_outlives_a_delete(local_store: LocalBlobStore, src: Path) -> None:
    await local_store.put_file(KEY, src)
    async with await local_store.open(KEY) as stream:
        await local_store.delete(KEY)
        assert await stream.read_all() == DATA
    assert not await local_store.exists(KEY)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("with_context", [True, False])
async def test_a_cancelled_reader_releases_the_file(
    local_store: LocalBlobStore, src: Path, with_context: bool
) -> None:
    """With `async with stream` the file is closed as the reader is cancelled; a stream just
    dropped is closed when it is garbage-collected (asyncio's async-generator finalizer)."""
    await local_store.put_file(KEY, src)
    fds_before = open_fds()
    started = asyncio.Event()

    async def slow_reader() -> None:
        stream = await local_store.open(KEY)
        if with_context:
            async with stream:
                async for _chunk in stream:
                    started.set()
                    await asyncio.sleep(10)
        else:
            async for _chunk in stream:
                started.set()
                await asyncio.sleep(10)

    task = asyncio.create_task(slow_reader())
    await started.wait()
    assert open_fds() == fds_before + 1
    task.cancel()
    await asyncio.wait([task])
    if not with_context:
        del task  # its exception's traceback holds the reader's frame, and so the stream
        gc.collect()
        for _ in range(100):
            if open_fds() == fds_before:
                break
            await asyncio.sleep(0.01)
    assert open_fds() == fds_before


async def test_directories_are_not_blobs(local_store: LocalBlobStore, src: Path) -> None:
    await local_store.put_file(KEY, src)
    directory = KEY.rsplit("/", 1)[0]
    assert await local_store.size(directory) is None
    assert not await local_store.exists(directory)
    with pytest.raises(BlobNotFound):
        await local_store.open(directory)
    await local_store.delete(directory)
    assert await local_store.exists(KEY)
    with pytest.raises(BlobNotFound):
        await local_store.open(KEY + "/below-a-file")


def test_paths_stay_inside_the_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root")
    assert store.path_for("ab/cd/x.ogg") == tmp_path / "root" / "ab" / "cd" / "x.ogg"
    for key in ("../root2/x", "/etc/passwd", "ab/../../x", "ab/./x", "ab//x"):
        with pytest.raises(ValueError, match="blob key"):
            store.path_for(key)


def test_the_root_is_created_and_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalBlobStore(Path("data/blobs"))
    assert store.root == tmp_path / "data" / "blobs"
    assert store.root.is_dir()
    shutil.rmtree(tmp_path / "data")
