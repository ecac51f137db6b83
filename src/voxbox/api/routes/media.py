"""Media metadata and bytes: Range (206), ETag/If-None-Match (304), safe type and disposition."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from voxbox.api.content import SANDBOX_HEADERS, content_disposition
from voxbox.api.deps import B, CurrentUser
from voxbox.core import media
from voxbox.core.views import MediaOut

router = APIRouter(tags=["media"])

_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")  # longer numbers: no range


@router.get("/media/{media_id}")
async def get_media(media_id: str, b: B, user: CurrentUser) -> MediaOut:
    return await media.get_media(b, user, media_id)


def _parse_range(header: str | None, size: int) -> tuple[int, int | None] | None:
    """(start, end) of a single ``bytes=`` range, or None to send the whole body.

    Suffix ranges (``bytes=-N``) count from the end. Several ranges or a malformed header are
    ignored (RFC 9110 lets a server send the full representation instead).
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        return max(size - int(last), 0), None
    if last and int(last) < int(first):
        return None
    return int(first), int(last) if last else None


@router.get("/media/{media_id}/content", response_model=None)
async def media_content(
    media_id: str,
    b: B,
    user: CurrentUser,
    format: Literal["original", "ogg", "mp3"] = "original",
    range: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
    if_range: Annotated[str | None, Header()] = None,
) -> Response:
    content = await media.media_content(b, user, media_id, format)
    headers = {
        "ETag": content.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": content_disposition(content.filename, inline=content.inline),
        **SANDBOX_HEADERS,
    }
    if if_none_match and content.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    # A Range for other bytes than these (If-Range with another ETag) gets the whole body.
    wanted = _parse_range(range, content.size) if if_range in (None, content.etag) else None
    stream = await media.open_content(b, content, wanted)
    if stream is None:
        return Response(
            status_code=416, headers={**headers, "Content-Range": f"bytes */{content.size}"}
        )
    headers["Content-Length"] = str(stream.length)
    if wanted is not None:
        headers["Content-Range"] = stream.content_range
    return StreamingResponse(
        stream,
        status_code=206 if wanted else 200,
        media_type=content.content_type,
        headers=headers,
    )
