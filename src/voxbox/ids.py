"""Sortable ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

Ids made by one process are strictly increasing, also within one millisecond, so message order
by id is the order the server accepted them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
        if value <= _last:
            value = _last + 1
        _last = value
    return _encode(value)


def ids_at(times: Iterable[datetime]) -> list[str]:
    """Ids for things that happened at ``times`` (kept messages from other apps or backups),
    strictly increasing in the given order even where the times are equal or go back."""
    ids, last = [], 0
    for at in times:
        value = max(0, int(at.timestamp() * 1000)) << 80 | int.from_bytes(os.urandom(10), "big")
        last = max(value, last + 1)
        ids.append(_encode(last))
    return ids


def time_of(id_: str) -> datetime:
    """When an id was made (its first 10 characters are the milliseconds since 1970)."""
    ms = 0
    for char in id_[:10]:
        ms = ms * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp(ms / 1000, UTC)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
