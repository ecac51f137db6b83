"""Domain errors. The API maps each to RFC 9457 problem JSON with its ``code``."""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator

from voxbox.storage import BlobNotFound

log = logging.getLogger(__name__)


class VoxboxError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, object]:
        """Extra members of the problem body (RFC 9457 extensions); none by default."""
        return {}


class BadRequest(VoxboxError):
    pass


class Unauthorized(VoxboxError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(VoxboxError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(VoxboxError):
    status, code, title = 404, "not_found", "Not found"


class BytesMissing(NotFound):
    """A row points at a blob the store does not have: lost storage, not the client's fault."""


@contextlib.contextmanager
def blobs_must_exist() -> Iterator[None]:
    """Turn the store's BlobNotFound into BytesMissing (404), logged as the server's fault."""
    try:
        yield
    except BlobNotFound as exc:
        log.error("missing blob %s", exc.key)
        raise BytesMissing("The bytes of this media are missing on the server.") from exc


class Conflict(VoxboxError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(VoxboxError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class TooLong(PayloadTooLarge):
    """Audio longer than the limit for its kind. The problem body adds ``reason: "too_long"``,
    ``limit_ms`` and ``duration_ms`` (what the file claims or was found to last; null when
    only "more than the limit" is known)."""

    def __init__(self, detail: str, *, limit_ms: int, duration_ms: int | None) -> None:
        super().__init__(detail)
        self.limit_ms = limit_ms
        self.duration_ms = duration_ms

    def extensions(self) -> dict[str, object]:
        return {"reason": "too_long", "limit_ms": self.limit_ms, "duration_ms": self.duration_ms}


class QuotaExceeded(PayloadTooLarge):
    """The user's storage quota is used up. The problem body adds ``reason: "storage_quota"``,
    ``used_bytes`` and ``quota_bytes``."""

    def __init__(self, detail: str, *, used_bytes: int, quota_bytes: int) -> None:
        super().__init__(detail)
        self.used_bytes = used_bytes
        self.quota_bytes = quota_bytes

    def extensions(self) -> dict[str, object]:
        return {
            "reason": "storage_quota",
            "used_bytes": self.used_bytes,
            "quota_bytes": self.quota_bytes,
        }


class UnsupportedMedia(VoxboxError):
    status, code, title = 415, "unsupported_media", "Unsupported media"


class Invalid(VoxboxError):
    status, code, title = 422, "invalid", "Invalid"


class TooManyUploads(Invalid):
    """The user has as many open uploads as allowed. The problem body adds
    ``reason: "too_many_uploads"`` and ``limit``."""

    def __init__(self, detail: str, *, limit: int) -> None:
        super().__init__(detail)
        self.limit = limit

    def extensions(self) -> dict[str, object]:
        return {"reason": "too_many_uploads", "limit": self.limit}


class RateLimited(VoxboxError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class Unavailable(VoxboxError):
    status, code, title = 503, "unavailable", "Service unavailable"


class InsufficientStorage(VoxboxError):
    status, code, title = 507, "insufficient_storage", "Insufficient storage"


DISK_FULL_DETAIL = "The server's disk is full: this change was not saved. Try again later."
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk: ENOSPC/EDQUOT from the OS, SQLite's
    SQLITE_FULL or PostgreSQL's disk_full, as the driver or SQLAlchemy raised it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(current, "sqlstate", None), getattr(current, "pgcode", None)):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False
