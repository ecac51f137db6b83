"""What is particular to S3BlobStore: object layout under the prefix, multipart uploads, the
lazy client, and behaviour once closed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError

from support.s3 import MotoS3, apply_fake_aws_env
from voxbox.storage import BlobError, blob_key
from voxbox.storage.s3 import S3BlobStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_objects_live_under_the_prefix(
    s3_store: S3BlobStore, moto_s3: MotoS3, tmp_path: Path
) -> None:
    key = blob_key(sha(b"hello"), ".ogg")
    src = tmp_path / "hello"
    src.write_bytes(b"hello")
    await s3_store.put_file(key, src)

    client = moto_s3.client()
    try:
        listed = client.list_objects_v2(Bucket=s3_store.bucket, Prefix=s3_store.prefix + "/")
    finally:
        client.close()
    assert [o["Key"] for o in listed["Contents"]] == [f"{s3_store.prefix}/{key}"]
    assert s3_store.object_key(key) == f"{s3_store.prefix}/{key}"


async def test_big_files_go_up_in_parts(
    s3_store: S3BlobStore, moto_s3: MotoS3, tmp_path: Path
) -> None:
    data = os.urandom(3 * s3_store.multipart_chunksize + 1234)
    key = blob_key(sha(data))
    src = tmp_path / "big"
    src.write_bytes(data)
    await s3_store.put_file(key, src, move=True)
    assert not src.exists()

    client = moto_s3.client()
    try:
        head = client.head_object(Bucket=s3_store.bucket, Key=s3_store.object_key(key))
    finally:
        client.close()
    # The ETag of a multipart object is "<md5 of the part md5s>-<number of parts>".
    assert head["ETag"].strip('"').endswith("-4")
    assert head["ContentLength"] == len(data)


async def test_the_client_is_made_on_first_use_and_the_store_refuses_work_once_closed(
    moto_s3: MotoS3, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_fake_aws_env(monkeypatch)
    store = S3BlobStore(s3_bucket, "lazy", endpoint_url=moto_s3.endpoint_url, region="us-east-1")
    assert repr(store) == f"S3BlobStore('s3://{s3_bucket}/lazy' at {moto_s3.endpoint_url})"
    assert store._client is None  # nothing blocking happened in the constructor
    assert await store.size(blob_key(sha(b"none"))) is None
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(BlobError, match="closed"):
        await store.size(blob_key(sha(b"none")))


async def test_credentials_come_from_the_environment(
    moto_s3: MotoS3, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials anywhere: boto3 says so (and, with the metadata service disabled, does
    not go looking for an instance role)."""
    apply_fake_aws_env(monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3BlobStore(s3_bucket, "nocreds", endpoint_url=moto_s3.endpoint_url, region="us-east-1")
    try:
        with pytest.raises(NoCredentialsError):
            await store.size(blob_key(sha(b"x")))
    finally:
        await store.close()
