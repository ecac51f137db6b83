from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import StreamingResponse

from voxbox.api.content import content_disposition
from voxbox.api.deps import B, CurrentUser
from voxbox.api.schemas import BackupIn
from voxbox.api.spool import spool_upload
from voxbox.core import backup
from voxbox.core.tasks import TaskOut

router = APIRouter(tags=["keeping"])


@router.post("/backups", status_code=202)
async def create_backup(body: BackupIn, b: B, user: CurrentUser) -> TaskOut:
    """Start a backup of everything the user has, encrypted with the passphrase (age, scrypt);
    poll `GET /backups/{id}`, then download it."""
    return await backup.start_backup(b, user, body.passphrase)


@router.get("/backups/{backup_id}")
async def get_backup(backup_id: str, b: B, user: CurrentUser) -> TaskOut:
    return await backup.backup_status(b, user, backup_id)


@router.get(
    "/backups/{backup_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "age file"}},
)
async def download_backup(backup_id: str, b: B, user: CurrentUser) -> StreamingResponse:
    """The backup, an age-encrypted file (`age -d` opens it with the passphrase)."""
    found = await backup.open_backup(b, user, backup_id)
    return StreamingResponse(
        found.stream,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(found.filename, inline=False),
            "Content-Length": str(found.size),
            "Cache-Control": "no-store",
        },
    )


@router.post("/backups/restore", status_code=202)
async def restore_backup(
    file: UploadFile, passphrase: Annotated[str, Form(max_length=1024)], b: B, user: CurrentUser
) -> TaskOut:
    """Restore a backup into this account. A wrong passphrase is a 422 at once; a damaged file
    fails the task, and changes nothing."""
    limit = b.settings.backup.restore_max_bytes
    path = await spool_upload(file, b.spool_dir, limit, "The backup")
    return await backup.start_restore(b, user, path, passphrase)


@router.get("/backups/restore/{restore_id}")
async def get_restore(restore_id: str, b: B, user: CurrentUser) -> TaskOut:
    return await backup.restore_status(b, user, restore_id)
