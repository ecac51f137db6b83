"""The BlobStore contract, run against LocalBlobStore and S3BlobStore (moto's S3 server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from voxbox.storage import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    RangeNotSatisfiable,
    blob_key,
)

DATA = bytes(range(256)) * 1000  # 256,000 bytes: several chunks, not a multiple of one


def key_of(data: bytes, suffix: str = ".bin") -> str:
    return blob_key(hashlib.sha256(data).hexdigest(), suffix)


def write(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    async with await store.open(key, start, end) as stream:
        return await stream.read_all()


async def test_put_then_size_exists_and_read_back(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    src = write(tmp_path, DATA)
    assert await store.size(key) is None
    assert not await store.exists(key)

    await store.put_file(key, src)

    assert src.read_bytes() == DATA  # a plain put only reads the source
    assert await store.size(key) == len(DATA)
    assert await store.exists(key)
    stream = await store.open(key)
    n = len(DATA)
    assert (stream.size, stream.start, stream.end, stream.length) == (n, 0, n - 1, n)
    chunks = [chunk async for chunk in stream]
    assert b"".join(chunks) == DATA
    assert all(len(c) <= CHUNK_SIZE for c in chunks) and len(chunks) > 1


async def test_put_replaces_an_existing_blob(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(b"x")
    await store.put_file(key, write(tmp_path, b"first version"))
    await store.put_file(key, write(tmp_path, b"second"))
    assert await read(store, key) == b"second"


async def test_put_with_move_takes_the_file_over(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    src = write(tmp_path, DATA)
    await store.put_file(key, src, move=True)
    assert not src.exists()
    assert await read(store, key) == DATA


async def test_put_of_a_missing_file_raises_and_stores_nothing(
    store: BlobStore, tmp_path: Path
) -> None:
    key = key_of(b"missing")
    for move in (False, True):
        with pytest.raises(FileNotFoundError):
            await store.put_file(key, tmp_path / "nope", move=move)
    assert not await store.exists(key)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DATA[:1]),  # first byte
        (1000, 1999, DATA[1000:2000]),  # middle
        (len(DATA) - 1, len(DATA) - 1, DATA[-1:]),  # last byte
        (len(DATA) - 1, None, DATA[-1:]),  # last byte, open end
        (100_000, None, DATA[100_000:]),  # "start-": to the end
        (200_000, 10**9, DATA[200_000:]),  # end beyond the blob: clipped, as in HTTP
        (0, len(DATA) - 1, DATA),  # explicit whole range
        (CHUNK_SIZE - 1, CHUNK_SIZE, DATA[CHUNK_SIZE - 1 : CHUNK_SIZE + 1]),  # across a chunk edge
    ],
)
async def test_open_a_range(
    store: BlobStore, tmp_path: Path, start: int, end: int | None, expected: bytes
) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    async with await store.open(key, start, end) as stream:
        assert stream.size == len(DATA)
        assert stream.start == start
        assert stream.end == start + len(expected) - 1
        assert stream.length == len(expected)
        assert stream.content_range == f"bytes {start}-{stream.end}/{len(DATA)}"
        assert await stream.read_all() == expected


async def test_range_past_the_end_is_not_satisfiable(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    for start, end in [(len(DATA), None), (len(DATA), len(DATA) + 10), (10**9, None)]:
        with pytest.raises(RangeNotSatisfiable) as info:
            await store.open(key, start, end)
        assert info.value.size == len(DATA)


async def test_bad_range_arguments_are_refused(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    for start, end in [(-1, None), (10, 9)]:
        with pytest.raises(ValueError, match="range"):
            await store.open(key, start, end)


async def test_empty_blob(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(b"")
    await store.put_file(key, write(tmp_path, b""))
    assert await store.size(key) == 0
    async with await store.open(key) as stream:
        assert (stream.size, stream.length) == (0, 0)
        assert await stream.read_all() == b""
    with pytest.raises(RangeNotSatisfiable):
        await store.open(key, 0, 10)


async def test_missing_blob(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(b"never stored")
    assert await store.size(key) is None
    assert not await store.exists(key)
    with pytest.raises(BlobNotFound) as info:
        await store.open(key)
    assert info.value.key == key
    with pytest.raises(BlobNotFound):
        await store.open(key, 5, 10)
    dest = tmp_path / "out.bin"
    with pytest.raises(BlobNotFound):
        await store.fetch_to_file(key, dest)
    assert not dest.exists()


async def test_delete_is_idempotent(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(BlobNotFound):
        await store.open(key)
    await store.delete(key)
    await store.delete(key_of(b"never stored"))


async def test_a_stream_stopped_early_can_be_closed(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    stream = await store.open(key)
    async for _chunk in stream:
        break
    await stream.aclose()
    assert await read(store, key, 10, 19) == DATA[10:20]


async def test_fetch_to_file(store: BlobStore, tmp_path: Path) -> None:
    key = key_of(DATA)
    await store.put_file(key, write(tmp_path, DATA))
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "fetched.bin"
    dest.write_bytes(b"old contents")
    await store.fetch_to_file(key, dest)
    assert dest.read_bytes() == DATA
    assert os.listdir(out) == ["fetched.bin"]  # no temp file left next to it


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "ab/../../x",
        "/abs",
        "/etc/passwd",
        "a//b",
        "a/b/",
        "",
        ".",
        "a/./b",
        ".hidden",
        "ab/.tmp-123",
        "AB/cd",
        "a\\b",
        "a b",
        "a\x00b",
        "é",
        "x" * 513,
    ],
)
async def test_bad_keys_are_refused_everywhere(store: BlobStore, tmp_path: Path, key: str) -> None:
    src = write(tmp_path, b"data")
    dest = tmp_path / "out"
    calls = [
        store.put_file(key, src),
        store.put_file(key, src, move=True),
        store.open(key),
        store.size(key),
        store.exists(key),
        store.delete(key),
        store.fetch_to_file(key, dest),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="blob key"):
            await call
    assert src.read_bytes() == b"data"
    assert not dest.exists()


async def test_a_20_mb_blob_round_trips(store: BlobStore, tmp_path: Path) -> None:
    """On S3 this goes up as a multipart upload (5 MiB parts in these tests)."""
    data = os.urandom(20 * 1000 * 1000)
    digest = hashlib.sha256(data).hexdigest()
    key = blob_key(digest, ".ogg")
    await store.put_file(key, write(tmp_path, data, "big.bin"))
    del data
    assert await store.size(key) == 20 * 1000 * 1000

    streamed = hashlib.sha256()
    biggest = 0
    async with await store.open(key) as stream:
        async for chunk in stream:
            streamed.update(chunk)
            biggest = max(biggest, len(chunk))
    assert streamed.hexdigest() == digest
    assert biggest <= CHUNK_SIZE

    dest = tmp_path / "fetched.ogg"
    await store.fetch_to_file(key, dest)
    with dest.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest

    tail = await read(store, key, 19_999_000)
    assert len(tail) == 1000


async def test_concurrent_puts_of_different_keys(store: BlobStore, tmp_path: Path) -> None:
    blobs = [os.urandom(50_000 + i) for i in range(10)]
    keys = [key_of(b) for b in blobs]
    sources = [write(tmp_path, b, f"src{i}") for i, b in enumerate(blobs)]

    await asyncio.gather(*(store.put_file(k, s) for k, s in zip(keys, sources, strict=True)))

    contents = await asyncio.gather(*(read(store, k) for k in keys))
    assert contents == blobs
    sizes = await asyncio.gather(*(store.size(k) for k in keys))
    assert sizes == [len(b) for b in blobs]
