"""Decode a voice recording while it streams in, so that finishing it costs only a remux.

A browser records WebM/Opus (Chromium) or Ogg/Opus (Firefox) and uploads a chunk every second.
The server feeds each appended chunk to a `StreamingOpusAnalyzer`; when the recording is sent,
`process(src, dst, limits, analyzer=...)` reuses the decoder state and the waveform peaks, so it
only demuxes, remuxes and decodes the last packets (see docs/benchmarks.md: 60 s recording).

The analyzer is an optimisation, never a source of truth: it lives in one process's memory (a
restart or a chunk that reached another worker means there is none, and `process()` decodes
everything), and `process()` checks that the packets it decoded are the file's (CRC) before
using its numbers. It understands the two recorder formats only: for anything else (Safari's
MP4/AAC) it stays inactive and costs nothing.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass

import av

from voxbox.media.errors import MediaError, TooLong
from voxbox.media.limits import MediaLimits
from voxbox.media.ogg import CAPTURE, OggPacketReader
from voxbox.media.opus import OPUS_RATE, OpusPeakMeter, packet_samples
from voxbox.media.webm import EBML_MAGIC, WebmOpusReader

# Bytes kept while waiting to know the container.
_SNIFF = 4


@dataclass
class AnalyzerState:
    """What `process()` takes over: the decoder after `packets` packets whose bytes have
    CRC-32 `crc`."""

    meter: OpusPeakMeter
    packets: int
    crc: int


class StreamingOpusAnalyzer:
    """Fed the bytes of a growing WebM/Opus or Ogg/Opus file, decodes what is complete.

    `feed()` each chunk in file order as it is appended (any chunk boundaries). Feeding costs
    about 1 ms per second of audio. With `limits`, `feed()` raises `TooLong` as soon as the
    recording passes `limits.max_duration_ms`. Anything unexpected (another container, a layout
    this reader does not handle, a decoder error) makes it inactive instead of raising: the
    upload goes on, and `process()` will decode the file itself. Not thread-safe: feed one
    recording from one thread at a time.
    """

    def __init__(self, limits: MediaLimits | None = None) -> None:
        self._limits = limits
        self._head = b""
        self._ogg: OggPacketReader | None = None
        self._webm: WebmOpusReader | None = None
        self._meter: OpusPeakMeter | None = None
        self._ogg_headers_seen = 0
        self._packets = 0
        self._samples = 0  # packet samples, pre-skip included
        self._crc = 0
        self._active = True
        self._taken = False
        self.inactive_reason: str | None = None

    @property
    def active(self) -> bool:
        """False once the analyzer gave up (unknown format, damage) or was taken by process()."""
        return self._active and not self._taken

    @property
    def packets(self) -> int:
        """Opus packets decoded so far."""
        return self._packets

    @property
    def duration_ms(self) -> int:
        """Duration decoded so far (0 when inactive)."""
        if self._meter is None:
            return 0
        return self._meter.decoded * 1000 // OPUS_RATE

    def waveform(self) -> list[int]:
        """Waveform of what was decoded so far (64 ints in 0..255), e.g. for a draft preview."""
        if self._meter is None:
            return [0] * 64
        return self._meter.bars()

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the file. Raises `TooLong` past the limit, nothing else."""
        if not self.active:
            return
        try:
            self._feed(chunk)
        except TooLong:
            self._give_up("too long")
            raise
        except (ValueError, av.FFmpegError) as exc:
            self._give_up(str(exc) or type(exc).__name__)

    def take(self, extradata: bytes) -> AnalyzerState | None:
        """For `process()`: hand over the decoder state if it decoded a stream with this
        OpusHead. The analyzer is inactive afterwards."""
        if not self.active or self._meter is None or self._meter.extradata != bytes(extradata):
            self._taken = True
            return None
        self._taken = True
        return AnalyzerState(meter=self._meter, packets=self._packets, crc=self._crc)

    def _give_up(self, reason: str) -> None:
        self._active = False
        self.inactive_reason = reason
        self._meter = None
        self._ogg = self._webm = None

    def _feed(self, chunk: bytes) -> None:
        if self._ogg is None and self._webm is None:
            self._head += chunk
            if len(self._head) < _SNIFF:
                return
            chunk, self._head = self._head, b""
            if chunk.startswith(CAPTURE):
                self._ogg = OggPacketReader()
            elif chunk.startswith(EBML_MAGIC):
                self._webm = WebmOpusReader()
            else:
                raise ValueError("not a WebM or Ogg recording")
        if self._ogg is not None:
            for packet in self._ogg.feed(chunk):
                self._ogg_packet(packet)
        elif self._webm is not None:
            for packet in self._webm.feed(chunk):
                if self._meter is None:
                    if self._webm.codec_private is None:
                        raise ValueError("WebM without an Opus track")
                    self._meter = OpusPeakMeter(self._webm.codec_private)
                self._audio_packet(packet)

    def _ogg_packet(self, packet: bytes) -> None:
        if self._ogg_headers_seen == 0:
            self._meter = OpusPeakMeter(packet)  # ValueError unless OpusHead
            self._ogg_headers_seen = 1
        elif self._ogg_headers_seen == 1:
            if not packet.startswith(b"OpusTags"):
                raise ValueError("Ogg/Opus without OpusTags")
            self._ogg_headers_seen = 2
        else:
            self._audio_packet(packet)

    def _audio_packet(self, payload: bytes) -> None:
        assert self._meter is not None
        try:
            samples = packet_samples(payload)
        except ValueError:
            return  # process() skips such a packet too
        self._meter.decode(payload)
        self._packets += 1
        self._crc = zlib.crc32(payload, self._crc)
        self._samples += samples
        if self._limits is not None:
            limit = self._limits.max_duration_ms * (OPUS_RATE // 1000)
            if self._samples - self._meter.head.pre_skip > limit:
                raise TooLong(
                    "the recording is longer than the limit",
                    limit_ms=self._limits.max_duration_ms,
                    duration_ms=None,
                )


class AnalyzerCache:
    """Analyzers of the recordings in progress in this process, keyed by upload id.

    Purely a shortcut: an upload with no analyzer here (after a restart, or fed by another
    worker) is decoded in full by `process()` with the same result. Bounded: the least recently
    fed recordings are forgotten first.
    """

    def __init__(self, limits: MediaLimits, max_open: int = 1000) -> None:
        self._limits = limits
        self._max_open = max_open
        self._open: OrderedDict[str, tuple[int, StreamingOpusAnalyzer]] = OrderedDict()

    def feed(self, upload_id: str, offset: int, data: bytes) -> None:
        """Bytes ``data`` were appended at ``offset``; a gap or a problem forgets the upload."""
        fed, analyzer = self._open.pop(upload_id, (0, None))
        if offset == 0:
            fed, analyzer = 0, StreamingOpusAnalyzer(self._limits)
        if analyzer is None or fed != offset:
            return
        try:
            analyzer.feed(data)
        except MediaError:
            return  # process() will say what is wrong
        if analyzer.active:
            self._open[upload_id] = (fed + len(data), analyzer)
            while len(self._open) > self._max_open:
                self._open.popitem(last=False)

    def take(self, upload_id: str, size: int) -> StreamingOpusAnalyzer | None:
        """The analyzer of an upload of ``size`` bytes, if it saw every byte; forgets it."""
        fed, analyzer = self._open.pop(upload_id, (0, None))
        return analyzer if analyzer is not None and fed == size else None

    def forget(self, upload_id: str) -> None:
        self._open.pop(upload_id, None)
