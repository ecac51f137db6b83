"""Why the pipeline refused a file.

Each error's message is meant for the uploader ("the file has no audio track"), never contains a
path, and is safe to put in an API problem body. Suggested HTTP mapping (the API layer decides):

- `NotAudio`       → 415 ``unsupported_media``: not an audio or video file at all.
- `InvalidMedia`   → 422 ``invalid``: a media file we cannot use (empty, truncated, corrupt, a
  video without an audio track, no decodable audio).
- `TooLong`        → 413 ``payload_too_large``: longer than the caller's duration limit.
- `DecodeTimeout`  → 413 ``payload_too_large``: more work than the decode-time budget allows;
  in practice a file that is too long for the machine (or built to be expensive), so the
  uploader's remedy is the same as for `TooLong`: send something shorter.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class: the input cannot become a voice/audio media. `str(err)` explains why."""


class NotAudio(MediaError):
    """The bytes are not audio or video at all (an image, a document, random bytes)."""


class InvalidMedia(MediaError):
    """A media file that cannot be used: empty, truncated, corrupt, or without an audio track."""


class TooLong(MediaError):
    """The audio lasts longer than the limit (known from the headers or found while decoding)."""

    def __init__(self, message: str, *, limit_ms: int, duration_ms: int | None) -> None:
        super().__init__(message)
        self.limit_ms = limit_ms
        #: How long the file claims or was found to be; `None` if only "more than the limit".
        self.duration_ms = duration_ms


class DecodeTimeout(MediaError):
    """Processing took longer than `MediaLimits.max_decode_seconds` and was abandoned."""
