"""Schemathesis hooks for the schema fuzz (test_schema_fuzz.py): how to send a tus PATCH body."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx: Any, value: Any) -> bytes:
    """An upload's next bytes: whatever was generated, as bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()
