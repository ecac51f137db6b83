"""Media: voice notes and audio files, from a finished upload to the bytes a player fetches.

- ``ingest``: a finished upload becomes media (probe, inline processing, content-addressed blobs);
- ``jobs``: background processing of long files, and re-queueing after a restart;
- ``serving``: who may fetch media, and where each rendition's bytes are (MP3 made on demand);
- ``gc``: releasing media nothing uses, and deleting blobs no media row points at;
- ``processing``: running the pipeline for a media, shared by ingest and jobs.
"""

from voxbox.core.media.gc import collect_garbage, release_media
from voxbox.core.media.ingest import finish_upload, ingest_file
from voxbox.core.media.jobs import (
    PROCESS_MEDIA,
    process_media_job,
    requeue_lost_processing,
    resume_processing,
)
from voxbox.core.media.processing import MediaKind
from voxbox.core.media.serving import (
    Content,
    Format,
    access_media,
    get_media,
    media_content,
    open_content,
)

__all__ = [
    "PROCESS_MEDIA",
    "Content",
    "Format",
    "MediaKind",
    "access_media",
    "collect_garbage",
    "finish_upload",
    "get_media",
    "ingest_file",
    "media_content",
    "open_content",
    "process_media_job",
    "release_media",
    "requeue_lost_processing",
    "resume_processing",
]
