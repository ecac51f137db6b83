"""Serving media bytes: lost storage is a clear 404, not a 500."""

from __future__ import annotations

import pytest

from voxbox.core.backends import Backends
from voxbox.core.errors import BytesMissing
from voxbox.core.media.serving import Content, open_content


async def test_bytes_lost_from_storage_are_a_404_saying_so(b: Backends) -> None:
    gone = Content("blobs/ab/cd/lost.ogg", 10, '"lost"', "audio/ogg", "lost.ogg")
    with pytest.raises(BytesMissing) as info:
        await open_content(b, gone, None)
    assert info.value.status == 404
    assert info.value.detail == "The bytes of this media are missing on the server."
