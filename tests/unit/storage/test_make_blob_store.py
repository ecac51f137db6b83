"""VOXBOX_STORAGE_URL -> BlobStore, and the errors a bad setting gets at start-up."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from support.s3 import MotoS3, apply_fake_aws_env
from voxbox.storage import LocalBlobStore, blob_key, make_blob_store
from voxbox.storage.s3 import S3BlobStore


def test_default_is_local_in_the_data_dir(tmp_path: Path) -> None:
    for url in (None, ""):
        store = make_blob_store(url, tmp_path)
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "blobs"


def test_file_url(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}/my%20blobs", f"file://localhost{tmp_path}/my%20blobs"):
        store = make_blob_store(url, tmp_path / "unused")
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "my blobs"


def test_s3_url(tmp_path: Path) -> None:
    store = make_blob_store(
        "s3://my-bucket/voxbox/prod/?endpoint=http://127.0.0.1:9000&region=eu-west-1", tmp_path
    )
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("my-bucket", "voxbox/prod")
    assert (store.endpoint_url, store.region) == ("http://127.0.0.1:9000", "eu-west-1")

    aws = make_blob_store("s3://my.bucket", tmp_path)
    assert isinstance(aws, S3BlobStore)
    assert (aws.bucket, aws.prefix, aws.endpoint_url, aws.region) == ("my.bucket", "", None, None)

    encoded = make_blob_store("s3://b12?endpoint=https%3A%2F%2Fs3.example.com%3A8443", tmp_path)
    assert isinstance(encoded, S3BlobStore)
    assert encoded.endpoint_url == "https://s3.example.com:8443"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/blobs", "unsupported scheme 'http'"),
        ("/var/lib/voxbox", "unsupported scheme ''"),
        ("blobs", "unsupported scheme ''"),
        ("file://relative/path", "three slashes"),
        ("file:relative", "absolute"),
        ("file:///", "absolute"),
        ("file:///tmp/x?mode=1", "no query"),
        ("s3://", "bucket name"),
        ("s3://Bad_Bucket/x", "bucket name"),
        ("s3://bucket:9000/x", "bucket name"),
        ("s3://AKIA:secret@bucket/x", "credentials"),
        ("s3://bucket/a//b", "prefix"),
        ("s3://bucket/a/../b", "prefix"),
        ("s3://bucket?access_key=x", "unknown parameter 'access_key'"),
        ("s3://bucket?region=a&region=b", "given twice"),
        ("s3://bucket?region=", "empty"),
        ("s3://bucket?region=EU%20West", "region"),
        ("s3://bucket?endpoint=127.0.0.1:9000", "http"),
        ("s3://bucket?endpoint=ftp://host", "http"),
        ("s3://bucket?endpoint=http://k:s@host", "credentials"),
        ("s3://bucket#frag", "fragment"),
    ],
)
def test_bad_urls_are_refused_clearly(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        make_blob_store(url, tmp_path)
    assert "storage URL" in str(info.value)


async def test_a_store_made_from_the_test_servers_url_works(
    moto_s3: MotoS3, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_fake_aws_env(monkeypatch)
    store = make_blob_store(moto_s3.storage_url(s3_bucket, "from-url"), tmp_path)
    src = tmp_path / "voice.ogg"
    src.write_bytes(b"OggS fake")
    key = blob_key(hashlib.sha256(b"OggS fake").hexdigest(), ".ogg")
    try:
        await store.put_file(key, src)
        async with await store.open(key, 5) as stream:
            assert await stream.read_all() == b"fake"
    finally:
        await store.close()
