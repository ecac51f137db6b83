"""Fixtures for the blob store tests: `store` is a LocalBlobStore or an S3BlobStore (against
moto's S3 server), so every contract test runs on both."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support.s3 import MotoS3, apply_fake_aws_env, start_moto
from voxbox.storage import BlobStore, LocalBlobStore
from voxbox.storage.s3 import MiB, S3BlobStore

BUCKET = "voxbox-storage-tests"
# Small enough that the 20 MB test blob goes up in parts (S3 wants parts of at least 5 MiB).
MULTIPART = 5 * MiB


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    s3 = start_moto()
    try:
        yield s3
    finally:
        s3.stop()


@pytest.fixture(scope="session")
def s3_bucket(moto_s3: MotoS3) -> str:
    """The session's bucket; each store gets a prefix of its own in it."""
    return moto_s3.create_bucket(BUCKET)


@pytest.fixture
async def s3_store(
    moto_s3: MotoS3, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[S3BlobStore]:
    """An S3 store with a prefix of its own in the session's bucket."""
    apply_fake_aws_env(monkeypatch)
    store = S3BlobStore(
        s3_bucket,
        f"test-{secrets.token_hex(6)}",
        endpoint_url=moto_s3.endpoint_url,
        region="us-east-1",
        multipart_threshold=MULTIPART,
        multipart_chunksize=MULTIPART,
    )
    yield store
    await store.close()


@pytest.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    store = LocalBlobStore(tmp_path / "blobs")
    yield store
    await store.close()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> BlobStore:
    store: BlobStore = request.getfixturevalue(f"{request.param}_store")
    return store
