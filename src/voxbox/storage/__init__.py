"""Blob storage: the BlobStore protocol, its local and S3 implementations, and the factory that
picks one from `VOXBOX_STORAGE_URL`.

Keys are generated (`blob_key(sha256_hex, suffix)`), never taken from users; every method
refuses an invalid key with ValueError.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from voxbox.storage.base import (
    CHUNK_SIZE,
    BlobError,
    BlobNotFound,
    BlobStore,
    BlobStream,
    RangeNotSatisfiable,
    blob_key,
    validate_key,
)
from voxbox.storage.local import LocalBlobStore

__all__ = [
    "CHUNK_SIZE",
    "BlobError",
    "BlobNotFound",
    "BlobStore",
    "BlobStream",
    "LocalBlobStore",
    "RangeNotSatisfiable",
    "blob_key",
    "make_blob_store",
    "validate_key",
]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_REGION = re.compile(r"[a-z0-9-]+")
_S3_PARAMS = ("endpoint", "region")
_EXAMPLES = "file:///var/lib/voxbox/blobs or s3://bucket/prefix?endpoint=URL&region=R"


def make_blob_store(storage_url: str | None, data_dir: Path) -> BlobStore:
    """The blob store that `storage_url` (the VOXBOX_STORAGE_URL setting) describes.

    - None or empty: LocalBlobStore(data_dir / "blobs").
    - `file:///abs/path`: LocalBlobStore at that absolute path.
    - `s3://bucket[/prefix][?endpoint=URL][&region=R]`: S3BlobStore; credentials come from the
      standard AWS variables and files, never from the URL.

    Raises ValueError, saying what is wrong, for anything else: call it at start-up. Creates the
    local root directory (blocking). Importing boto3 happens only for an s3:// URL.
    """
    if not storage_url:
        return LocalBlobStore(data_dir / "blobs")
    parts = urlsplit(storage_url)
    if parts.scheme == "file":
        return LocalBlobStore(_file_path(storage_url))
    if parts.scheme == "s3":
        return _s3_store(storage_url)
    raise ValueError(
        f"storage URL {storage_url!r}: unsupported scheme {parts.scheme!r}; use {_EXAMPLES}"
    )


def _file_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"storage URL {url!r}: a file URL needs an absolute path, like "
            f"file:///var/lib/voxbox/blobs (three slashes), not host {parts.netloc!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"storage URL {url!r}: a file URL takes no query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise ValueError(f"storage URL {url!r}: a file URL needs an absolute directory path")
    return Path(path)


def _s3_store(url: str) -> BlobStore:
    parts = urlsplit(url)
    where = f"storage URL {url!r}"
    if "@" in parts.netloc:
        raise ValueError(
            f"{where}: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or use an AWS profile or role)"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{where}: {bucket!r} is not a valid S3 bucket name")
    if parts.fragment:
        raise ValueError(f"{where}: an S3 URL takes no fragment")
    prefix = unquote(parts.path).strip("/")
    if prefix and any(
        seg in (".", "..") or not _PREFIX_SEGMENT.fullmatch(seg) for seg in prefix.split("/")
    ):
        raise ValueError(
            f"{where}: the prefix {prefix!r} must be /-separated non-empty segments of "
            "letters, digits and !_.*'()- (no '.' or '..')"
        )
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _S3_PARAMS:
            raise ValueError(f"{where}: unknown parameter {name!r}; known: endpoint, region")
        if name in params:
            raise ValueError(f"{where}: parameter {name!r} given twice")
        if not value:
            raise ValueError(f"{where}: parameter {name!r} is empty")
        params[name] = value
    endpoint = params.get("endpoint")
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise ValueError(f"{where}: endpoint must be an http:// or https:// URL")
        if ep.username or ep.password:
            raise ValueError(f"{where}: credentials do not belong in the endpoint URL")
    region = params.get("region")
    if region is not None and not _REGION.fullmatch(region):
        raise ValueError(f"{where}: {region!r} is not a region name")

    from voxbox.storage.s3 import S3BlobStore  # boto3 is only needed when S3 is configured

    return S3BlobStore(bucket, prefix, endpoint_url=endpoint, region=region)
