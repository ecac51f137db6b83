"""Cheap look at a file: what it is, whether it has audio, what its headers claim."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer

from voxbox.media.errors import InvalidMedia, NotAudio

# Leading bytes of containers that carry audio: a file that starts like this but that FFmpeg
# cannot open is a damaged media file (422), not "not audio" (415).
_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"OggS", "Ogg"),
    (0, b"\x1aE\xdf\xa3", "WebM/Matroska"),
    (0, b"RIFF", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3"),
    (0, b"#!AMR", "AMR"),
    (0, b"FORM", "AIFF"),
    (0, b"caff", "CAF"),
    (4, b"ftyp", "MP4"),
    (4, b"moov", "MP4"),
    (4, b"mdat", "MP4"),
)

# The fewest bits per second any compressed audio we accept takes over a whole file, container
# included: AMR's 1-byte NO_DATA frames make 400 bit/s, Ogg's page headers alone about 220 bit/s,
# an MP4's sample table 4 bytes per frame. A duration claim that would need fewer bits than the
# file has is more than the file holds.
MIN_BIT_RATE = 100
# Rounding and header bytes: a PCM claim may exceed what the data holds by this much.
_PCM_SLACK_MS = 100

# Demuxers of still images and text "video": such a file is not audio at all (415), whereas a
# real video without an audio track is a media file we cannot use (422).
_IMAGE_DEMUXERS = frozenset({"image2", "gif", "apng", "tty", "bin", "idf", "adf", "xbin", "webp"})
_IMAGE_CODECS = frozenset(
    {
        "png",
        "apng",
        "jpegls",
        "bmp",
        "gif",
        "webp",
        "tiff",
        "ppm",
        "pgm",
        "pam",
        "pbm",
        "pgmyuv",
        "qoi",
        "sgi",
        "xbm",
        "xpm",
        "xwd",
        "sunrast",
        "targa",
        "pcx",
        "ansi",
        "bintext",
        "xbin",
        "idf",
        "svg",
        "pictor",
        "psd",
        "dds",
        "hdr",
        "exr",
        "jpegxl",
    }
)


@dataclass(frozen=True)
class Probe:
    """What the headers say. `duration_ms` is a claim (maybe estimated from the bit rate, maybe
    a lie, `None` when absent, as in a MediaRecorder WebM): never use it to accept; refuse early
    on `credible_duration_ms` only. `codec`, `channels` and `sample_rate` describe the audio
    stream `process()` would use, and are `None` when there is none. `held_ms` is the most
    audio the file's bytes can hold (exact for PCM, at `MIN_BIT_RATE` otherwise), `None` when
    unknown."""

    container: str
    codec: str | None
    has_audio: bool
    has_video: bool
    duration_ms: int | None
    channels: int | None
    sample_rate: int | None
    held_ms: int | None = None

    @property
    def credible_duration_ms(self) -> int | None:
        """The claim, unless it is more than the file holds (a forged header, or a file cut
        short: a WAV that says 6 hours and holds 2 s); then `None`, as if nothing were
        claimed, and only decoding tells the duration."""
        if self.duration_ms is None or self.held_ms is None:
            return self.duration_ms
        return self.duration_ms if self.duration_ms <= self.held_ms else None

    @property
    def is_opus(self) -> bool:
        """Opus audio: `process()` remuxes it instead of transcoding."""
        return self.codec == "opus"

    @property
    def format_name(self) -> str:
        """`container/codec`, for logs."""
        return f"{self.container}/{self.codec or 'none'}"


def probe(src: Path) -> Probe:
    """Open `src`, read its headers (and the first packets FFmpeg needs to identify streams).

    Raises `InvalidMedia` for an empty or damaged media file, `NotAudio` for something that is
    not audio or video at all (an image, random bytes). A video without audio is *returned*
    (`has_audio=False`); `process()` refuses it.
    """
    with open_input(src) as container:
        return describe(container)


@contextmanager
def open_input(src: Path) -> Iterator[InputContainer]:
    """Open `src` for demuxing, mapping FFmpeg's refusal to NotAudio / InvalidMedia."""
    size = src.stat().st_size
    if size == 0:
        raise InvalidMedia("the file is empty")
    try:
        container = av.open(str(src), "r", metadata_errors="replace")
    except av.FFmpegError as exc:
        if is_environmental(exc):
            raise
        kind = sniff(src)
        if kind is not None:
            raise InvalidMedia(f"damaged {kind} file: {reason(exc)}") from exc
        raise NotAudio("not an audio or video file") from exc
    try:
        if _is_image(container):
            raise NotAudio("an image, not an audio or video file")
        yield container
    finally:
        container.close()


def audio_stream(container: InputContainer) -> AudioStream | None:
    """The audio stream `process()` uses: FFmpeg's "best" one (most channels, default flag)."""
    if not container.streams.audio:
        return None
    try:
        best = container.streams.best("audio")
    except (ValueError, av.FFmpegError):
        best = None
    return best if isinstance(best, AudioStream) else container.streams.audio[0]


def describe(container: InputContainer) -> Probe:
    """The `Probe` of an open container (see `probe`)."""
    stream = audio_stream(container)
    has_video = any(s.type == "video" for s in container.streams)
    codec = channels = rate = None
    claimed = container_duration_ms(container)
    if container.format.name == "wav":
        # FFmpeg clamps a WAV's data size to the file size; the header's own claim is what a
        # truncated or forged file gives away.
        riff = wav_claim_ms(Path(container.name))
        if riff is not None and (claimed is None or riff > claimed):
            claimed = riff
    if stream is not None:
        ctx = stream.codec_context
        codec = ctx.name if ctx is not None else None
        channels = ctx.channels if ctx is not None else None
        rate = ctx.sample_rate if ctx is not None else None
        stream_ms = stream_duration_ms(stream)
        if stream_ms is not None and (claimed is None or container.format.name != "wav"):
            claimed = stream_ms
    elif not has_video:
        # Opened, but neither audio nor video: subtitles, data, nothing.
        raise NotAudio("no audio or video in the file")
    return Probe(
        container=container.format.name,
        codec=codec,
        has_audio=stream is not None,
        has_video=has_video,
        duration_ms=claimed,
        channels=channels or None,
        sample_rate=rate or None,
        held_ms=held_ms(container, stream),
    )


def held_ms(container: InputContainer, stream: AudioStream | None) -> int | None:
    """The most audio the file's bytes can hold: exact for PCM (its byte rate is fixed), at
    `MIN_BIT_RATE` for anything compressed. `None` when the file's size is unknown."""
    try:
        size = os.stat(container.name).st_size
    except (OSError, TypeError, ValueError):
        return None
    ctx = stream.codec_context if stream is not None else None
    if ctx is not None and ctx.name.startswith("pcm_") and ctx.bit_rate:
        return size * 8 * 1000 // ctx.bit_rate + _PCM_SLACK_MS
    return size * 8 * 1000 // MIN_BIT_RATE


def stream_duration_ms(stream: AudioStream) -> int | None:
    if stream.duration is None or stream.duration <= 0 or stream.time_base is None:
        return None
    return int(stream.duration * stream.time_base * 1000)


def container_duration_ms(container: InputContainer) -> int | None:
    if container.duration is None or container.duration <= 0:
        return None
    return container.duration // 1000  # AV_TIME_BASE is microseconds


def wav_claim_ms(path: Path) -> int | None:
    """Duration announced by a RIFF/WAVE header's data chunk size (None if absent/unknown)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, rate, align = 12, 0, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 8 + 14 <= len(head):
            rate = int.from_bytes(head[pos + 12 : pos + 16], "little")
            align = int.from_bytes(head[pos + 20 : pos + 22], "little")
        elif chunk == b"data":
            if size in (0, 0xFFFFFFFF) or not rate or not align:
                return None  # a streaming writer's placeholder
            return size // align * 1000 // rate
        pos += 8 + size + (size & 1)
    return None


def sniff(src: Path) -> str | None:
    """The kind of media file `src` starts like ("Ogg", "MP4" ...), None if no known magic."""
    with src.open("rb") as f:
        head = f.read(16)
    for offset, magic, kind in _MAGICS:
        if head[offset : offset + len(magic)] == magic:
            if kind == "WAV" and head[8:12] not in (b"WAVE", b""):
                continue
            return kind
    return None


def _is_image(container: InputContainer) -> bool:
    if container.streams.audio:
        return False
    name = container.format.name
    if name.endswith("_pipe") or name in _IMAGE_DEMUXERS:
        return True
    video = [s for s in container.streams if s.type == "video"]
    return bool(video) and all(
        s.codec_context is not None and s.codec_context.name in _IMAGE_CODECS for s in video
    )


def reason(exc: av.FFmpegError) -> str:
    """FFmpeg's words for an error, without the path that `str(exc)` includes."""
    return str(exc.strerror or "unreadable").lower().rstrip(".")


# Errno values that mean "this machine", not "these bytes". EIO and ENOMEM are not among them:
# FFmpeg's Matroska demuxer reports a damaged file as EIO, and a forged size field as ENOMEM.
_ENVIRONMENTAL = frozenset(
    {
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EISDIR,
        errno.EROFS,
        errno.EMFILE,
        errno.ENFILE,
    }
)


def is_environmental(exc: av.FFmpegError) -> bool:
    """True for errors of the machine (missing path, disk full...), not of the file's bytes."""
    return isinstance(exc, OSError) and exc.errno in _ENVIRONMENTAL
