"""From an uploaded file to the stored form of a voice/audio media: Ogg/Opus, duration, waveform.

Everything here is synchronous, CPU-bound and touches only the paths it is given: the server
runs it in a worker thread. Calls on different files may run concurrently (PyAV releases the GIL
while decoding and encoding); nothing is shared between calls.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet

from voxbox.media.errors import DecodeTimeout, InvalidMedia, NotAudio, TooLong
from voxbox.media.limits import MediaLimits
from voxbox.media.ogg import ends_with_complete_page
from voxbox.media.opus import FINE_BLOCK, OPUS_RATE, OpusPeakMeter, packet_samples
from voxbox.media.probe import (
    Probe,
    audio_stream,
    container_duration_ms,
    describe,
    is_environmental,
    open_input,
    reason,
    sniff,
    stream_duration_ms,
)
from voxbox.media.waveform import PeakAccumulator

if TYPE_CHECKING:
    from voxbox.media.recording import StreamingOpusAnalyzer

OGG_OPUS = "audio/ogg; codecs=opus"
MPEG_AUDIO = "audio/mpeg"
TRANSCODE_BIT_RATE = 32_000
MP3_BIT_RATE = 64_000
# MPEG-2 Layer III at 24 kHz: every MP3 decoder plays it, 12 kHz of bandwidth is plenty for a
# rendition of 32 kbps Opus, and LAME has half the samples to encode (render time is what the
# first `?format=mp3` request waits for).
MP3_SAMPLE_RATE = 24_000
# LAME's -q 7 ("fast"): 35 % faster than its default -q 3, no audible difference on speech.
_LAME_QUALITY = "7"

_OPUS_TB = Fraction(1, OPUS_RATE)
# Container options that make the output depend only on the input (no random Ogg serial, no
# library version in the tags): the same upload always gives the same bytes, so the
# content-addressed store keeps one copy.
_BITEXACT = {"fflags": "+bitexact"}
# A few undecodable packets in a long file are tolerated (players skip them too); more is a
# corrupt file.
_MAX_BAD_PACKETS = 10
# Demuxers whose duration claim is exact (sample tables, granules, data size), as opposed to
# estimated from the bit rate (MP3 without a Xing header, ADTS AAC, AMR).
_EXACT_CLAIMS = frozenset(
    {"ogg", "wav", "w64", "flac", "aiff", "caf", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}
)
# An estimated claim refuses early only when it exceeds the limit by this factor.
_ESTIMATE_SLACK = 1.5
# In strict mode, decoding less than the exact claim minus this much means a truncated file.
_TRUNCATION_SLACK_MS = 250


@dataclass(frozen=True)
class ProcessedAudio:
    """The result of `process()`; the Ogg/Opus file is at the `dst` given.

    `duration_ms` is the decoded duration (not the headers' claim); `waveform` is 64 ints in
    0..255 (see `voxbox.media.waveform` for the scale); `remuxed` says the Opus packets were
    copied, not re-encoded; `source_format` is `container/codec` for logs; `channels` is the
    output's (1 when transcoded; a remuxed stereo Opus stays stereo).
    """

    duration_ms: int
    waveform: list[int]
    remuxed: bool
    source_format: str
    channels: int
    content_type: str = OGG_OPUS


def process(
    src: Path,
    dst: Path,
    limits: MediaLimits,
    *,
    allow_truncated: bool = False,
    analyzer: StreamingOpusAnalyzer | None = None,
) -> ProcessedAudio:
    """Turn the audio of `src` into Ogg/Opus at `dst`; measure duration and waveform.

    Opus input (WebM, Matroska, Ogg, MP4) is remuxed packet for packet; anything else is decoded,
    resampled to 48 kHz mono and encoded with libopus (32 kbps, VoIP), streaming: memory does not
    grow with the duration.

    `dst` is written through a temporary file in the same directory and renamed on success; on
    any failure neither exists afterwards. The file is not fsynced: the caller hands it to the
    BlobStore, which makes the durable copy.

    `allow_truncated`: accept a file that was cut off (a recording whose upload stopped in the
    middle of a chunk) and keep what decodes; by default a truncated file is `InvalidMedia`.

    `analyzer`: a `StreamingOpusAnalyzer` that was fed this same file while it was uploaded; its
    decoding is reused so only the rest of the file is decoded. It is consumed. If it does not
    match the file it is ignored (the result is the same, just slower).

    Raises `NotAudio`, `InvalidMedia`, `TooLong`, `DecodeTimeout` (see `voxbox.media.errors`).
    """
    deadline = _Deadline(limits.max_decode_seconds)
    try:
        return _process(src, dst, limits, deadline, allow_truncated, analyzer)
    except _AnalyzerMismatch:
        # The analyzer saw other bytes than `src` holds: do the whole decoding ourselves.
        return _process(src, dst, limits, deadline, allow_truncated, None)


class _AnalyzerMismatch(Exception):
    pass


class _Undecodable(InvalidMedia):
    """Not one frame decoded: `process()` turns it into NotAudio when the file does not even
    start like a media file (random bytes that an FFmpeg demuxer happened to accept)."""


def _process(
    src: Path,
    dst: Path,
    limits: MediaLimits,
    deadline: _Deadline,
    allow_truncated: bool,
    analyzer: StreamingOpusAnalyzer | None,
) -> ProcessedAudio:
    with open_input(src) as container:
        info = describe(container)
        stream = audio_stream(container)
        if stream is None:
            raise InvalidMedia("the video has no audio track")
        try:
            av.Codec(info.codec or "none", "r")
        except ValueError as exc:
            raise NotAudio(f"unsupported audio codec: {info.codec or 'unknown'}") from exc
        refuse_claimed_duration(info, limits)
        if not allow_truncated and info.container == "ogg" and not ends_with_complete_page(src):
            raise InvalidMedia("truncated Ogg file: it ends in the middle of a page")
        with _atomic_output(dst) as tmp:
            try:
                if info.is_opus:
                    duration_ms, waveform, channels = _remux_opus(
                        container, stream, tmp, limits, deadline, allow_truncated, analyzer
                    )
                else:
                    duration_ms, waveform = _transcode(
                        container, stream, tmp, limits, deadline, allow_truncated
                    )
                    channels = 1
            except _Undecodable as exc:
                if sniff(src) is None:
                    raise NotAudio("not an audio or video file") from exc
                raise InvalidMedia(str(exc)) from exc
            except av.FFmpegError as exc:
                if is_environmental(exc):
                    raise  # disk full, permissions: not the uploader's fault
                raise InvalidMedia(f"cannot process the audio: {reason(exc)}") from exc
            if not allow_truncated:
                _refuse_truncated(container, stream, info, duration_ms)
    return ProcessedAudio(
        duration_ms=duration_ms,
        waveform=waveform,
        remuxed=info.is_opus,
        source_format=info.format_name,
        channels=channels,
    )


def render_mp3(
    src_ogg: Path,
    dst: Path,
    *,
    bit_rate: int = MP3_BIT_RATE,
    sample_rate: int = MP3_SAMPLE_RATE,
) -> None:
    """Write an MP3 (LAME, mono, CBR `bit_rate`) of a stored Ogg/Opus, for players without Opus.

    `src_ogg` is expected to be `process()` output (trusted, already within limits); about
    5 ms per second of audio here, so render long files in a job, not in the request. Same
    temp-file-and-rename rule as `process()`. Raises `InvalidMedia` if it cannot be decoded.
    """
    try:
        with (
            open_input(src_ogg) as container,
            _atomic_output(dst) as tmp,
            av.open(str(tmp), "w", format="mp3", options=_BITEXACT) as out,
        ):
            stream = audio_stream(container)
            if stream is None:
                raise InvalidMedia("no audio track")
            rate = sample_rate
            ost = out.add_stream("libmp3lame", rate=rate, layout="mono")
            ost.bit_rate = bit_rate
            ost.codec_context.options = {"compression_level": _LAME_QUALITY}
            resampler = AudioResampler(format="s16p", layout="mono", rate=rate)
            pts = 0
            for frame in container.decode(stream):
                for out_frame in resampler.resample(frame):
                    pts = _encode(out, ost, out_frame, pts, Fraction(1, rate))
            for out_frame in resampler.resample(None):
                pts = _encode(out, ost, out_frame, pts, Fraction(1, rate))
            out.mux(ost.encode(None))
    except av.FFmpegError as exc:
        if is_environmental(exc):
            raise
        raise InvalidMedia(f"cannot decode the stored audio: {reason(exc)}") from exc


# --- the two paths ------------------------------------------------------------------------------


def _remux_opus(
    container: InputContainer,
    stream: AudioStream,
    tmp: Path,
    limits: MediaLimits,
    deadline: _Deadline,
    allow_truncated: bool,
    analyzer: StreamingOpusAnalyzer | None,
) -> tuple[int, list[int], int]:
    """Copy the Opus packets into Ogg with exact granule positions; decode them for the meter.

    Timestamps are rebuilt from the packets' own durations (TOC byte), not taken from the
    source: Chromium's MediaRecorder WebM has millisecond, jittery, sometimes non-zero-based
    timestamps and no duration, and the Ogg granule must count samples exactly.
    """
    extradata = stream.codec_context.extradata
    if not extradata:
        raise InvalidMedia("Opus stream without its identification header")
    taken = analyzer.take(extradata) if analyzer is not None else None
    try:
        meter = taken.meter if taken is not None else OpusPeakMeter(extradata)
    except ValueError as exc:
        raise InvalidMedia(f"invalid Opus header: {exc}") from exc
    # Packets the analyzer already decoded: only checked (CRC of their bytes) and muxed.
    known = taken.packets if taken is not None else 0
    crc = 0

    pre_skip = meter.head.pre_skip
    limit_samples = limits.max_duration_ms * (OPUS_RATE // 1000)
    padding = _ogg_muxer_padding(stream)
    bad = 0
    total = 0  # samples of all packets so far, pre-skip included
    index = 0
    held: Packet | None = None
    held_samples = 0
    with av.open(str(tmp), "w", format="ogg", options=_BITEXACT) as out:
        ost = out.add_stream_from_template(stream)
        for packet in _packets(container, stream, allow_truncated):
            deadline.check()
            payload = bytes(packet)
            try:
                samples = packet_samples(payload)
            except ValueError as exc:
                bad = _count_bad(bad, meter.decoded > 0, (total - pre_skip) // 48, str(exc))
                continue
            if index < known:
                crc = zlib.crc32(payload, crc)
                if index == known - 1 and taken is not None and crc != taken.crc:
                    raise _AnalyzerMismatch
            else:
                try:
                    meter.decode(payload)
                except av.FFmpegError as exc:
                    bad = _count_bad(
                        bad,
                        meter.decoded > 0,
                        (total - pre_skip) // 48,
                        reason(exc),
                    )
            if held is not None:
                out.mux_one(held)
            packet.stream = ost
            packet.time_base = _OPUS_TB
            # The Ogg muxer writes granule = pts + duration + its notion of the padding; make
            # the granule the sample count through this packet, pre-skip included (RFC 7845).
            packet.pts = packet.dts = total - padding
            packet.duration = samples
            held, held_samples = packet, samples
            total += samples
            index += 1
            if total - pre_skip > limit_samples:
                raise _too_long(limits)
        if index < known:
            raise _AnalyzerMismatch
        if held is None:
            raise _Undecodable("no audio packets in the file")
        end_trim = min(_end_trim(held), held_samples)
        held.duration = held_samples - end_trim
        out.mux_one(held)
    decoded = meter.decoded - end_trim
    if decoded <= 0:
        raise _Undecodable("no decodable audio in the file")
    return (decoded * 1000 + OPUS_RATE // 2) // OPUS_RATE, meter.bars(), meter.head.channels


def _transcode(
    container: InputContainer,
    stream: AudioStream,
    tmp: Path,
    limits: MediaLimits,
    deadline: _Deadline,
    allow_truncated: bool,
) -> tuple[int, list[int]]:
    """Decode, resample to 48 kHz mono float, feed libopus and the peak meter frame by frame."""
    peaks = PeakAccumulator(FINE_BLOCK)
    limit_s = limits.max_duration_ms / 1000
    decoded_s = 0.0  # measured at the input's own rate(s)
    bad = 0
    resampler: AudioResampler | None = None
    setup: tuple[str, str, int] | None = None
    pts = 0
    with av.open(str(tmp), "w", format="ogg", options=_BITEXACT) as out:
        ost = out.add_stream("libopus", rate=OPUS_RATE, layout="mono")
        ost.bit_rate = TRANSCODE_BIT_RATE
        ost.options = {"application": "voip"}
        ost.codec_context.format = "flt"

        def take(frames: list[AudioFrame]) -> None:
            nonlocal decoded_s, resampler, setup, pts
            for frame in frames:
                if not frame.samples:
                    continue
                decoded_s += frame.samples / frame.sample_rate
                if decoded_s > limit_s:
                    raise _too_long(limits)
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if resampler is None or key != setup:  # first frame, or a format change
                    if resampler is not None:
                        pts = _resample_out(resampler, None, out, ost, peaks, pts)
                    resampler = AudioResampler(format="flt", layout="mono", rate=OPUS_RATE)
                    setup = key
                pts = _resample_out(resampler, frame, out, ost, peaks, pts)

        ctx = stream.codec_context
        for packet in _packets(container, stream, allow_truncated):
            deadline.check()
            try:
                frames = ctx.decode(packet)
            except av.FFmpegError as exc:
                bad = _count_bad(bad, decoded_s > 0, round(decoded_s * 1000), reason(exc))
                continue
            take(frames)
        with contextlib.suppress(av.FFmpegError):  # nothing more to drain
            take(ctx.decode(None))
        if resampler is not None:
            pts = _resample_out(resampler, None, out, ost, peaks, pts)
        if pts == 0:
            raise _Undecodable("no decodable audio in the file")
        out.mux(ost.encode(None))
    return round(decoded_s * 1000), peaks.bars()


def _resample_out(
    resampler: AudioResampler,
    frame: AudioFrame | None,
    out: OutputContainer,
    ost: AudioStream,
    peaks: PeakAccumulator,
    pts: int,
) -> int:
    for out_frame in resampler.resample(frame):
        peaks.add(out_frame.to_ndarray())
        pts = _encode(out, ost, out_frame, pts, _OPUS_TB)
    return pts


def _encode(
    out: OutputContainer, ost: AudioStream, frame: AudioFrame, pts: int, time_base: Fraction
) -> int:
    frame.pts = pts
    frame.time_base = time_base
    out.mux(ost.encode(frame))
    return pts + frame.samples


# --- helpers ------------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise DecodeTimeout(f"processing took longer than {self._seconds:g} s")


def _packets(
    container: InputContainer, stream: AudioStream, allow_truncated: bool
) -> Iterator[Packet]:
    """The stream's packets, without the empty end-of-stream packet PyAV adds.

    A demuxing error ends the stream when truncation is allowed (the damage is at the cut),
    else it is `InvalidMedia`.
    """
    demuxer = container.demux(stream)
    while True:
        try:
            packet = next(demuxer)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            if allow_truncated:
                return
            if is_environmental(exc):
                raise
            raise InvalidMedia(f"damaged file: {reason(exc)}") from exc
        if packet.size:
            yield packet


def _count_bad(bad: int, decoded_some: bool, at_ms: int, reason: str) -> int:
    bad += 1
    if bad > _MAX_BAD_PACKETS:
        raise (InvalidMedia if decoded_some else _Undecodable)(
            f"corrupt audio: more than {_MAX_BAD_PACKETS} undecodable packets "
            f"(the last near {_clock(int(at_ms))}: {reason})"
        )
    return bad


def _end_trim(packet: Packet) -> int:
    """Samples to drop at the end of the last packet (Ogg end trimming, WebM DiscardPadding)."""
    if not packet.has_sidedata("skip_samples"):
        return 0
    data = bytes(packet.get_sidedata("skip_samples"))
    if len(data) < 8:
        return 0
    return int(struct.unpack_from("<I", data, 4)[0])


def _ogg_muxer_padding(template: AudioStream) -> int:
    """The pre-skip FFmpeg's Ogg muxer adds to pts when computing granules for this stream.

    It copies the demuxer's `initial_padding`, which is the pre-skip for Ogg input, the
    CodecDelay for WebM (absent from some recorders' files: then 0) and whatever the MP4
    demuxer made of it. PyAV does not expose it, so mux one packet into memory and read the
    granule back (well under a millisecond).
    """
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as scratch:
        s = scratch.add_stream_from_template(template)
        packet = Packet(b"\xf8\xff\xfe")  # a 20 ms CELT silence frame
        packet.stream = s
        packet.time_base = _OPUS_TB
        packet.pts = packet.dts = 0
        packet.duration = 960
        scratch.mux_one(packet)
    data = buf.getvalue()
    at = data.rfind(b"OggS")
    (granule,) = struct.unpack_from("<q", data, at + 6)
    return int(granule) - 960


def refuse_claimed_duration(info: Probe, limits: MediaLimits) -> None:
    """TooLong before any decoding when the headers already claim too much, credibly: a claim
    of more than the file holds is no reason to refuse (decoding measures such a file)."""
    claimed = info.credible_duration_ms
    if claimed is None:
        return
    slack = 1.0 if info.container in _EXACT_CLAIMS else _ESTIMATE_SLACK
    if claimed > limits.max_duration_ms * slack:
        raise TooLong(
            f"the audio lasts {_clock(claimed)}, longer than the limit of "
            f"{_clock(limits.max_duration_ms)}",
            limit_ms=limits.max_duration_ms,
            duration_ms=claimed,
        )


def _refuse_truncated(
    container: InputContainer, stream: AudioStream, info: Probe, decoded_ms: int
) -> None:
    """InvalidMedia when an exact duration claim promises more than could be decoded."""
    if info.container not in _EXACT_CLAIMS:
        return
    claimed = stream_duration_ms(stream)
    if claimed is None and not info.has_video:
        claimed = container_duration_ms(container)
    if info.container == "wav":
        claimed = info.duration_ms  # the RIFF header's own claim, which FFmpeg clamps
    if claimed is None:
        return
    if decoded_ms + max(_TRUNCATION_SLACK_MS, claimed // 50) < claimed:
        raise InvalidMedia(
            f"truncated file: the headers say {_clock(claimed)} but only "
            f"{_clock(decoded_ms)} of audio is there"
        )


def _too_long(limits: MediaLimits) -> TooLong:
    return TooLong(
        f"the audio is longer than the limit of {_clock(limits.max_duration_ms)}",
        limit_ms=limits.max_duration_ms,
        duration_ms=None,
    )


def _clock(ms: int) -> str:
    s = ms // 1000
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}" if s >= 1 else f"{ms} ms"


@contextmanager
def _atomic_output(dst: Path) -> Iterator[Path]:
    """A temporary path next to `dst`, renamed to `dst` if the block succeeds, else removed."""
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
