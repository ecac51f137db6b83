from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, UploadFile

from voxbox.api.deps import B, CurrentUser
from voxbox.api.spool import spool_upload
from voxbox.core.importing import service
from voxbox.core.tasks import TaskOut

router = APIRouter(tags=["keeping"])


@router.post("/imports", status_code=202)
async def import_chat(
    file: UploadFile,
    b: B,
    user: CurrentUser,
    mapping: Annotated[str | None, Form(max_length=64 * 1024)] = None,
    timezone: Annotated[str, Form(max_length=64)] = "UTC",
) -> TaskOut:
    """Import a chat exported from WhatsApp (its zip, or the bare .txt) or Telegram Desktop
    (result.json, or a zip of its folder). `mapping`: a JSON object of names in the export to
    handles here; `timezone`: the IANA zone of the export's clock times. A chat file in a format
    voxbox cannot read is a 422 quoting its first bad line; the rest runs as a task."""
    limit = b.settings.imports.max_bytes
    path = await spool_upload(file, b.spool_dir, limit, "The export")
    name = file.filename or "export"
    return await service.start_import(b, user, path, name, timezone=timezone, mapping=mapping)


@router.get("/imports/{import_id}")
async def get_import(import_id: str, b: B, user: CurrentUser) -> TaskOut:
    return await service.import_status(b, user, import_id)
