"""Files that come in multipart form fields, copied to the spool for a job to read."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from fastapi import UploadFile

from voxbox.core.errors import PayloadTooLarge
from voxbox.ids import new_id


async def spool_upload(file: UploadFile, spool_dir: Path, max_bytes: int, what: str) -> Path:
    """Copy the upload to a new file in ``spool_dir``; 413 past ``max_bytes`` (nothing is
    left behind). The caller takes the file over."""
    if file.size is not None and file.size > max_bytes:
        raise PayloadTooLarge(f"{what} is larger than this server takes ({max_bytes} bytes).")
    dest = spool_dir / f"upload-{new_id()}"

    def copy() -> int:
        file.file.seek(0)
        with dest.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1024 * 1024)
            return out.tell()

    try:
        if await asyncio.to_thread(copy) > max_bytes:
            raise PayloadTooLarge(f"{what} is larger than this server takes ({max_bytes} bytes).")
    except BaseException:
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        raise
    return dest
