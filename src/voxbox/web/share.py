"""The share target's form: its ``audio`` file parts, streamed into uploads (core)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from voxbox.core import uploads
from voxbox.core.backends import Backends
from voxbox.core.principal import Principal
from voxbox.web.multipart import Part, read_parts

FILE_FIELD = "audio"


async def store_shared_files(
    b: Backends, user: Principal, body: AsyncIterator[bytes], content_type: str
) -> list[str]:
    """The ids of the uploads made of the form's ``audio`` files (other fields are read past:
    ``title``, ``text`` and ``url`` carry nothing the server keeps)."""
    async with aclosing(read_parts(body, content_type)) as parts:
        stored = await uploads.store_shared_files(b, user, _files(parts))
    return [u.id for u in stored]


async def _files(parts: AsyncIterator[Part]) -> AsyncIterator[uploads.IncomingFile]:
    async for part in parts:
        if part.name == FILE_FIELD and part.filename is not None:
            yield uploads.IncomingFile(part.filename, part.content_type, part.chunks())
