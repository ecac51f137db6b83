"""S3BlobStore: blobs as objects `<prefix>/<key>` in an S3 bucket (AWS or any S3-compatible API).

Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws files, container or instance roles), never from
voxbox settings. boto3 is blocking; every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from voxbox.storage.base import (
    BlobError,
    BlobNotFound,
    BlobStream,
    RangeNotSatisfiable,
    check_range,
    chunks_from_thread,
    resolve_range,
    validate_key,
)

MiB = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Blobs as S3 objects. PUT and CompleteMultipartUpload are atomic on S3, so a reader never
    sees part of a blob; a failed multipart upload is aborted by boto3's transfer manager.

    `endpoint_url` is for S3-compatible services (MinIO, Ceph, R2, moto …); None means AWS.
    Files over `multipart_threshold` bytes are uploaded in parts of `multipart_chunksize` (S3
    wants parts of at least 5 MiB), `max_concurrency` parts at a time.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        multipart_threshold: int = 16 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 4,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=True,
            # Not the CRT client even if awscrt happens to be installed: one code path.
            preferred_transfer_client="classic",
        )
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}'{where})"

    def object_key(self, key: str) -> str:
        """The S3 object key of blob `key`. ValueError for an invalid key."""
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _client_config(self) -> Config:
        custom = self.endpoint_url is not None and not (
            (urlsplit(self.endpoint_url).hostname or "").endswith(".amazonaws.com")
        )
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": 5},
            "connect_timeout": 10,
            "read_timeout": 60,
            # Streams being served and multipart parts share the pool.
            "max_pool_connections": 32,
        }
        if custom:
            # S3-compatible services generally want path-style URLs (no bucket DNS names), and
            # many reject the CRC checksum headers boto3 >= 1.36 adds by default.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        return Config(**options)

    def _get_client(self) -> Any:
        """The store's one boto3 client (thread-safe), created on first use in a worker thread:
        creating it reads botocore's data files and resolves credentials, which blocks."""
        with self._client_lock:
            if self._closed:
                raise BlobError("S3BlobStore is closed")
            if self._client is None:
                # A session of our own: boto3's default session is not thread-safe.
                session = boto3.session.Session()
                self._client = session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=self._client_config(),
                )
            return self._client

    # -- writing -------------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        obj = self.object_key(key)
        await asyncio.to_thread(self._put_file, obj, Path(path), move)

    def _put_file(self, obj: str, path: Path, move: bool) -> None:
        os.stat(path)  # FileNotFoundError before any request
        self._get_client().upload_file(str(path), self.bucket, obj, Config=self._transfer)
        if move:
            os.unlink(path)

    # -- reading -------------------------------------------------------------------------------

    async def open(self, key: str, start: int = 0, end: int | None = None) -> BlobStream:
        obj = self.object_key(key)
        check_range(start, end)
        body, size, first, last = await asyncio.to_thread(self._open, key, obj, start, end)
        chunks = chunks_from_thread(key, body.read, body.close, last - first + 1)
        return BlobStream(key, size, first, last, chunks)

    def _open(self, key: str, obj: str, start: int, end: int | None) -> tuple[Any, int, int, int]:
        whole = start == 0 and end is None
        kwargs: dict[str, str] = {}
        if not whole:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._get_client().get_object(Bucket=self.bucket, Key=obj, **kwargs)
        except ClientError as e:
            if _status(e) == 404:
                raise BlobNotFound(key) from None
            if _code(e) == "InvalidRange" or _status(e) == 416:
                size = self._size(obj)
                if size is None:
                    raise BlobNotFound(key) from None
                raise RangeNotSatisfiable(key, start, size) from None
            raise
        body = response["Body"]
        content_range = response.get("ContentRange")
        match = _CONTENT_RANGE.fullmatch(content_range or "")
        if whole or match is None:
            size = int(response["ContentLength"])
            if not whole:
                # The service ignored the Range header and sent the whole object.
                body.close()
                raise BlobError(f"storage ignored the Range request for {key!r}")
            return body, size, 0, size - 1
        first, last, size = (int(g) for g in match.groups())
        # S3 clips `end` to the object already; resolve_range is the shared rulebook.
        expected = resolve_range(key, size, start, end)
        if (first, last) != expected:
            body.close()
            raise BlobError(f"storage sent bytes {first}-{last} of {key!r}, not {expected}")
        return body, size, first, last

    async def size(self, key: str) -> int | None:
        obj = self.object_key(key)
        return await asyncio.to_thread(self._size, obj)

    def _size(self, obj: str) -> int | None:
        try:
            response = self._get_client().head_object(Bucket=self.bucket, Key=obj)
        except ClientError as e:
            if _status(e) == 404:
                return None
            raise
        return int(response["ContentLength"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def fetch_to_file(self, key: str, path: Path) -> None:
        obj = self.object_key(key)
        await asyncio.to_thread(self._fetch_to_file, key, obj, Path(path))

    def _fetch_to_file(self, key: str, obj: str, path: Path) -> None:
        # The transfer manager downloads into a temp name next to `path` and renames it at the
        # end, removing it on failure: `path` never holds half a blob.
        try:
            self._get_client().download_file(self.bucket, obj, str(path), Config=self._transfer)
        except ClientError as e:
            if _status(e) == 404:
                raise BlobNotFound(key) from None
            raise

    # -- deleting ------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        obj = self.object_key(key)
        await asyncio.to_thread(self._delete, obj)

    def _delete(self, obj: str) -> None:
        # DeleteObject succeeds whether or not the object exists.
        self._get_client().delete_object(Bucket=self.bucket, Key=obj)

    async def close(self) -> None:
        with self._client_lock:
            client, self._client, self._closed = self._client, None, True
        if client is not None:
            await asyncio.to_thread(client.close)
