"""Running the audio pipeline for a media: scratch files, limits, the stored Ogg/Opus rendition.

Shared by ingest (inline processing) and jobs (background processing).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxbox import media as pipeline
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid, PayloadTooLarge, TooLong, UnsupportedMedia, VoxboxError
from voxbox.db.models import Media
from voxbox.metrics import MEDIA_PROCESS_SECONDS
from voxbox.storage import blob_key

MediaKind = Literal["voice", "audio"]


def refusal(exc: pipeline.MediaError) -> VoxboxError:
    """The domain error (415, 413 or 422) for the pipeline's refusal of a file."""
    if isinstance(exc, pipeline.NotAudio):
        return UnsupportedMedia(str(exc))
    if isinstance(exc, pipeline.TooLong):
        return TooLong(str(exc), limit_ms=exc.limit_ms, duration_ms=exc.duration_ms)
    if isinstance(exc, pipeline.DecodeTimeout):
        return PayloadTooLarge(str(exc))
    return Invalid(str(exc))


def max_seconds(b: Backends, kind: MediaKind) -> int:
    limits = b.settings.limits
    return limits.voice_max_seconds if kind == "voice" else limits.audio_max_seconds


def limits_for(b: Backends, kind: MediaKind) -> pipeline.MediaLimits:
    return pipeline.MediaLimits(
        max_duration_ms=max_seconds(b, kind) * 1000,
        max_decode_seconds=b.settings.limits.decode_max_seconds,
    )


@dataclass
class Work:
    """Scratch files of one ingest, job or rendering; removed whatever happens."""

    dir: Path

    @property
    def source(self) -> Path:
        return self.dir / "source"

    @property
    def ogg(self) -> Path:
        return self.dir / "out.ogg"

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def sha256_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def process_source(
    b: Backends,
    media: Media,
    source: Path,
    ogg: Path,
    analyzer: pipeline.StreamingOpusAnalyzer | None = None,
) -> None:
    """Run the pipeline on ``source`` and store the Ogg/Opus rendition; fills in ``media``.

    A voice note may be a recording cut off mid-chunk (a tab closed while recording): what
    decodes is kept. Raises the domain error of a refusal (see ``refusal``).
    """
    started = time.perf_counter()
    streamed = analyzer is not None and analyzer.active
    try:
        result = await asyncio.to_thread(
            pipeline.process,
            source,
            ogg,
            limits_for(b, media.kind),  # type: ignore[arg-type]
            allow_truncated=media.kind == "voice",
            analyzer=analyzer,
        )
    except pipeline.MediaError as exc:
        raise refusal(exc) from exc
    path = "transcode" if not result.remuxed else "streamed" if streamed else "remux"
    MEDIA_PROCESS_SECONDS.labels(path).observe(time.perf_counter() - started)
    ogg_sha, ogg_size = await asyncio.to_thread(sha256_file, ogg)
    media.ogg_key, media.ogg_size = blob_key(ogg_sha, ".ogg"), ogg_size
    await b.store.put_file(media.ogg_key, ogg, move=True)
    media.duration_ms, media.waveform = result.duration_ms, json.dumps(result.waveform)
