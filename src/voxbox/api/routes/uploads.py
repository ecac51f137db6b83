"""tus 1.0.0 uploads: core, creation, creation-defer-length, termination, expiration."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from voxbox.api.content import SANDBOX_HEADERS, content_disposition
from voxbox.api.deps import B, CurrentUser
from voxbox.api.schemas import FinishIn, UploadsOut
from voxbox.core import media, uploads
from voxbox.core.errors import BadRequest, UnsupportedMedia, VoxboxError
from voxbox.core.uploads import UploadOut
from voxbox.core.views import MediaOut

router = APIRouter(tags=["uploads"])

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-defer-length,termination,expiration"


class PreconditionFailed(VoxboxError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


def _check_tus(version: str | None) -> None:
    if version != TUS_VERSION:
        raise PreconditionFailed(f"Send 'Tus-Resumable: {TUS_VERSION}'.")


def _tus_headers(upload: UploadOut) -> dict[str, str]:
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(upload.offset),
        "Upload-Expires": format_datetime(upload.expires_at, usegmt=True),
        "Cache-Control": "no-store",
    }
    if upload.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(upload.length)
    return headers


def _header_int(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value):  # ASCII digits only: str.isdigit() takes "²"
        raise BadRequest(f"{name} must be a non-negative integer.")
    return int(value)


_DECIMAL = re.compile(r"[0-9]{1,19}")


@router.options("/uploads", status_code=204)
async def tus_options(b: B) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(b.settings.limits.upload_max_bytes),
        },
    )


@router.post("/uploads", status_code=201)
async def create_upload(
    b: B,
    user: CurrentUser,
    tus_resumable: Annotated[str | None, Header()] = None,
    upload_length: Annotated[str | None, Header()] = None,
    upload_defer_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
) -> Response:
    _check_tus(tus_resumable)
    length = _header_int("Upload-Length", upload_length)
    if (length is None) == (upload_defer_length is None):
        raise BadRequest("Send exactly one of Upload-Length and Upload-Defer-Length: 1.")
    if upload_defer_length is not None and upload_defer_length != "1":
        raise BadRequest("Upload-Defer-Length must be 1.")
    upload = await uploads.create_upload(b, user, length, uploads.parse_metadata(upload_metadata))
    headers = _tus_headers(upload)
    headers["Location"] = f"/api/v1/uploads/{upload.id}"
    return Response(status_code=201, headers=headers)


@router.head("/uploads/{upload_id}")
async def upload_offset(
    upload_id: str,
    b: B,
    user: CurrentUser,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    _check_tus(tus_resumable)
    upload = await uploads.get_upload(b, user, upload_id)
    return Response(status_code=200, headers=_tus_headers(upload))


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise ConnectionError from exc


@router.patch("/uploads/{upload_id}", status_code=204)
async def append(
    upload_id: str,
    request: Request,
    b: B,
    user: CurrentUser,
    tus_resumable: Annotated[str | None, Header()] = None,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_length: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    _check_tus(tus_resumable)
    if content_type != "application/offset+octet-stream":
        raise UnsupportedMedia("PATCH bodies are Content-Type: application/offset+octet-stream.")
    offset = _header_int("Upload-Offset", upload_offset)
    if offset is None:
        raise BadRequest("Send Upload-Offset.")
    result = await uploads.append(
        b, user, upload_id, offset, _body(request), _header_int("Upload-Length", upload_length)
    )
    return Response(status_code=204, headers=_tus_headers(result.upload))


@router.delete("/uploads/{upload_id}", status_code=204)
async def discard(upload_id: str, b: B, user: CurrentUser) -> Response:
    await uploads.discard_upload(b, user, upload_id)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


@router.get("/uploads")
async def list_uploads(b: B, user: CurrentUser, state: Literal["open"] = "open") -> UploadsOut:
    return UploadsOut(uploads=await uploads.list_open_uploads(b, user))


@router.get("/uploads/{upload_id}/content")
async def draft_content(upload_id: str, b: B, user: CurrentUser) -> StreamingResponse:
    """The bytes received so far: a draft's preview (a recording cut where it stopped)."""
    draft = await uploads.read_upload(b, user, upload_id)
    return StreamingResponse(
        draft.chunks,
        media_type=draft.content_type,
        headers={
            "Content-Length": str(draft.upload.offset),
            "Cache-Control": "no-store",
            "Content-Disposition": content_disposition(draft.filename, inline=draft.inline),
            **SANDBOX_HEADERS,
        },
    )


@router.post("/uploads/{upload_id}/finish", status_code=201)
async def finish(upload_id: str, body: FinishIn, b: B, user: CurrentUser) -> MediaOut:
    return await media.finish_upload(b, user, upload_id, body.kind)
