"""How media bytes are served: types from an allow-list of audio and video, safe file names.

A type a client declared is never served as such: a file that is `text/html` or
`image/svg+xml` by declaration (or by sniffing) would run script on the app's own origin, where
the session cookie lives. Stored media gets its type from the probed container; anything not in
the allow-list is served as `application/octet-stream`, as an attachment.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # views import this module; they need not load PyAV
    from voxbox import media as pipeline

OCTET_STREAM = "application/octet-stream"

# FFmpeg demuxer name -> the type of an audio-only file in that container.
_AUDIO_BY_CONTAINER = {
    "aac": "audio/aac",  # ADTS
    "aiff": "audio/aiff",
    "amr": "audio/amr",
    "au": "audio/basic",
    "caf": "audio/x-caf",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "w64": "audio/wav",
    "matroska,webm": "audio/webm",
    "webm": "audio/webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4",
    "ac3": "audio/ac3",
    "eac3": "audio/eac3",
    "wv": "audio/x-wavpack",
    "asf": "audio/x-ms-wma",
}
# The same container holding a video track (the audio of a video is accepted).
_VIDEO_BY_CONTAINER = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "matroska,webm": "video/webm",
    "webm": "video/webm",
    "ogg": "video/ogg",
    "asf": "video/x-ms-asf",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "mpeg": "video/mpeg",
    "mpegts": "video/mp2t",
}

SAFE_TYPES = frozenset(
    {
        *_AUDIO_BY_CONTAINER.values(),
        *_VIDEO_BY_CONTAINER.values(),
        "audio/3gpp",
        "audio/ogg; codecs=opus",
        "audio/mp3",
        "audio/x-wav",
        "audio/wave",
        "audio/x-aiff",
        "audio/x-flac",
        "audio/x-m4a",
        "audio/opus",
        "audio/vnd.wave",
        "video/quicktime",
        "video/3gpp",
    }
)


def probed_content_type(probe: pipeline.Probe) -> str:
    """The type the bytes show, from the allow-list; `application/octet-stream` when the
    container is none we name."""
    if probe.has_video:
        return _VIDEO_BY_CONTAINER.get(probe.container, OCTET_STREAM)
    if probe.container.startswith("mov,mp4") and probe.codec and probe.codec.startswith("amr"):
        return "audio/3gpp"
    return _AUDIO_BY_CONTAINER.get(probe.container, OCTET_STREAM)


def base_type(value: str | None) -> str:
    """`type/subtype` of a Content-Type value, lower-cased, without parameters."""
    return (value or "").split(";", 1)[0].strip().lower()


def safe_content_type(value: str | None) -> str:
    """`value` if it is an allowed audio or video type, else `application/octet-stream`.

    For stored media types (which may predate the allow-list) and declared draft types alike.
    A parameter is kept only for the one type we make ourselves (`audio/ogg; codecs=opus`).
    """
    if value is not None and value.strip().lower() in SAFE_TYPES:
        return value.strip().lower()
    base = base_type(value)
    return base if base in SAFE_TYPES else OCTET_STREAM


def is_inline(content_type: str) -> bool:
    """Whether bytes of this (already safe) type may be shown inline by the browser."""
    return content_type != OCTET_STREAM


def safe_filename(name: str | None, fallback: str) -> str:
    """A filename fit for storage and Content-Disposition: no paths, no control characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if c.isprintable() and c not in '"<>:|?*').strip(" .")
    return name[:255] or fallback
