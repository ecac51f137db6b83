"""Opus specifics: the identification header, packet durations and a decoding peak meter."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import av
import numpy as np

from voxbox.media.waveform import PeakAccumulator

OPUS_RATE = 48_000
# A fine waveform bucket is 20 ms, Opus's usual frame.
FINE_BLOCK = OPUS_RATE // 50


@dataclass(frozen=True)
class OpusHead:
    """The fields of an OpusHead (RFC 7845 §5.1) the pipeline needs."""

    channels: int
    pre_skip: int

    @classmethod
    def parse(cls, data: bytes) -> OpusHead:
        if len(data) < 19 or data[:8] != b"OpusHead":
            raise ValueError("not an OpusHead")
        if data[8] >> 4:  # major version must be 0
            raise ValueError(f"unsupported OpusHead version {data[8]}")
        channels = data[9]
        (pre_skip,) = struct.unpack_from("<H", data, 10)
        if channels == 0:
            raise ValueError("OpusHead with 0 channels")
        return cls(channels=channels, pre_skip=pre_skip)


# Samples (at 48 kHz) of one frame for each TOC config (RFC 6716 §3.1): SILK 10/20/40/60 ms,
# Hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
_FRAME_SAMPLES = (480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4


def packet_samples(packet: bytes | memoryview) -> int:
    """Duration in 48 kHz samples of one Opus packet, from its TOC byte (RFC 6716 §3.1).

    Raises ValueError for a packet that is malformed at that level (empty, a code-3 packet
    without its frame count, more than 120 ms).
    """
    if len(packet) < 1:
        raise ValueError("empty Opus packet")
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise ValueError("truncated code-3 Opus packet")
        frames = packet[1] & 0x3F
        if frames == 0:
            raise ValueError("Opus packet with 0 frames")
    samples = per_frame * frames
    if samples > 5760:
        raise ValueError("Opus packet longer than 120 ms")
    return samples


class OpusPeakMeter:
    """Decodes an Opus stream packet by packet into a waveform peak accumulator.

    Feed the raw packet bytes (no container side data): the decoder drops the OpusHead
    pre-skip itself; end trimming, which only the container knows, is the caller's arithmetic.
    `decoded` counts the samples per channel produced. Not thread-safe.
    """

    def __init__(self, extradata: bytes) -> None:
        self.head = OpusHead.parse(extradata)
        self.extradata = bytes(extradata)
        ctx = av.CodecContext.create("opus", "r")
        ctx.extradata = self.extradata
        self._ctx = ctx
        self._peaks = PeakAccumulator(FINE_BLOCK)
        self.decoded = 0
        # Decoded float32 planes (one list per channel) not yet handed to the accumulator:
        # copying raw plane bytes per frame and converting once per second is several times
        # cheaper than one NumPy array per 20 ms frame.
        self._pending: list[list[bytes]] = []
        self._pending_samples = 0

    def decode(self, payload: bytes) -> None:
        """Decode one packet (raises av.FFmpegError if the decoder rejects it)."""
        for frame in self._ctx.decode(av.Packet(payload)):
            n = frame.samples
            if not n:
                continue
            self.decoded += n
            if frame.format.name != "fltp":  # FFmpeg's Opus decoder gives fltp; be safe
                self._flush()
                self._peaks.add(frame.to_ndarray().astype(np.float32))
                continue
            planes = frame.planes
            if len(self._pending) != len(planes):
                self._flush()
                self._pending = [[] for _ in planes]
            size = n * 4
            for parts, plane in zip(self._pending, planes, strict=True):
                parts.append(bytes(plane)[:size])
            self._pending_samples += n
            if self._pending_samples >= OPUS_RATE:
                self._flush()

    def bars(self) -> list[int]:
        """The waveform of everything decoded so far."""
        self._flush()
        return self._peaks.bars()

    def _flush(self) -> None:
        if not self._pending_samples:
            return
        channels = [np.frombuffer(b"".join(parts), dtype=np.float32) for parts in self._pending]
        self._pending = [[] for _ in self._pending]
        self._pending_samples = 0
        self._peaks.add(channels[0] if len(channels) == 1 else np.vstack(channels))
