#!/usr/bin/env python3
"""Audio pipeline benchmark (voxbox.media): the two timings of issue 3, and where time goes.

1. finish: `process()` of a 60 s WebM/Opus recording as Chromium's MediaRecorder streams it
   (mono 48 kHz, libopus 32 kbps, unknown-size segment and clusters, no duration, no cues).
   Target: median <= 50 ms. Measured three ways: a cold `process()` (demux + remux + decode
   everything), and `process(analyzer=...)` after a `StreamingOpusAnalyzer` was fed the
   recording chunk by chunk while it "uploaded" (all chunks, or all but the last second, as
   when the last PATCH arrives with the send). The breakdown rows say where the time goes.
2. transcode: `process()` of a 10-minute M4A/AAC (mono 44.1 kHz, 64 kbps) to Ogg/Opus +
   waveform, against `ffmpeg -i in.m4a -c:a libopus -b:a 32k -ac 1 out.ogg` on the same file in
   the same run. Target: ratio <= 1.2. Without an `ffmpeg` binary, a plain PyAV transcode
   (no waveform) stands in for it.

    .venv/bin/python benchmarks/pipeline.py [--runs 5] [--long] [--keep DIR]

`--long` adds one run each of a 60-minute voice file (WebM/Opus remux and M4A transcode), to
size the background-job threshold. Every figure is the median of `--runs` runs (after one
warm-up run) unless marked "1 run".
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from voxbox.media import MediaLimits, StreamingOpusAnalyzer, process, render_mp3

T = TypeVar("T")
LIMITS = MediaLimits(max_duration_ms=6 * 3_600_000, max_decode_seconds=3_600)
SPEECH = (
    "Hi, it's me. I'm on the train now, it's running about ten minutes late, so don't wait "
    "for me for dinner. Could you take the bins out? Thanks, see you later. "
)


# --- inputs -------------------------------------------------------------------------------------


def speech_signal(rate: int) -> np.ndarray:
    """A few seconds of espeak-ng speech at `rate` (mono float32), or a speech-like tone mix
    when espeak-ng is not installed. Looped to any length by `looped`."""
    if shutil.which("espeak-ng"):
        wav = subprocess.run(
            ["espeak-ng", "--stdout", SPEECH], check=True, capture_output=True
        ).stdout
        with av.open(io.BytesIO(wav)) as inp:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [
                f.to_ndarray().reshape(-1)
                for frame in [*inp.decode(audio=0), None]
                for f in resampler.resample(frame)
            ]
        speech = np.concatenate(parts).astype(np.float32)
        return np.concatenate([speech, np.zeros(rate // 2, np.float32)])  # a breath
    t = np.arange(8 * rate) / rate
    envelope = np.clip(np.sin(2 * np.pi * 1.7 * t), 0, 1) ** 1.5
    return (0.8 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def looped(signal: np.ndarray, seconds: float, rate: int, chunk: int) -> Iterator[np.ndarray]:
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        idx = (np.arange(start, min(start + chunk, total)) % len(signal)).astype(np.int64)
        yield signal[idx]


class WriteOnly:
    """A non-seekable sink: the muxer streams like MediaRecorder (no sizes, duration, cues)."""

    def __init__(self, path: Path) -> None:
        self._f = path.open("wb")

    def write(self, data: bytes) -> int:
        return self._f.write(data)

    def close(self) -> None:
        self._f.close()


def make_input(
    path: Path, fmt: str, codec: str, seconds: float, rate: int, bit_rate: int, **opts: str
) -> None:
    signal = speech_signal(rate)
    sink: WriteOnly | None = WriteOnly(path) if fmt == "webm" else None
    fmt_opts = {"live": "1", "cluster_time_limit": "1000"} if fmt == "webm" else {}
    with av.open(sink or str(path), "w", format=fmt, options=fmt_opts) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        if opts:
            stream.options = dict(opts)
        pts = 0
        for block in looped(signal, seconds, rate, 4096):
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += len(block)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if sink is not None:
        sink.close()


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    ms: float
    target: str = ""
    note: str = ""


def median_ms(fn: Callable[[], object], runs: int) -> float:
    return median_ms_with(lambda: None, lambda _: fn(), runs)


def median_ms_with(setup: Callable[[], T], fn: Callable[[T], object], runs: int) -> float:
    """Median wall time of `fn(setup())`, setup not timed; one extra warm-up run dropped."""
    times = []
    for i in range(runs + 1):
        arg = setup()
        start = time.perf_counter()
        fn(arg)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def packets_of(path: Path) -> tuple[bytes, list[bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        return extradata, [bytes(p) for p in container.demux(stream) if p.size]


def decode_all(extradata: bytes, packets: list[bytes], codec: str = "opus") -> int:
    ctx = av.CodecContext.create(codec, "r")
    ctx.extradata = extradata
    n = 0
    for payload in packets:
        for frame in ctx.decode(av.Packet(payload)):
            n += frame.samples
    return n


def demux_only(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(container.streams.audio[0]) if p.size)


def remux_only(src: Path, dst: Path) -> None:
    """Demux + Ogg mux with rebuilt timestamps, no decoding: the floor of the remux path."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="ogg") as out:
        stream = inp.streams.audio[0]
        ost = out.add_stream_from_template(stream)
        pts = -312
        for packet in inp.demux(stream):
            if not packet.size:
                continue
            packet.stream = ost
            packet.time_base = Fraction(1, 48_000)
            packet.pts = packet.dts = pts
            packet.duration = 960
            pts += 960
            out.mux_one(packet)


def chunks_of(data: bytes, pieces: int) -> list[bytes]:
    size = -(-len(data) // pieces)
    return [data[i : i + size] for i in range(0, len(data), size)]


def bench_finish(work: Path, runs: int, frame_ms: int) -> list[Row]:
    src = work / f"recording-60s-{frame_ms}ms.webm"
    make_input(
        src, "webm", "libopus", 60, 48_000, 32_000, application="voip", frame_duration=str(frame_ms)
    )
    dst = work / "finish.ogg"
    data = src.read_bytes()
    seconds = chunks_of(data, 60)  # what a 1 s timeslice MediaRecorder PATCHes
    rows = [
        Row(
            f"finish 60 s WebM/Opus ({frame_ms} ms packets): process(), cold",
            median_ms(lambda: process(src, dst, LIMITS), runs),
            "<= 50",
        ),
    ]

    def fed(pieces: list[bytes]) -> StreamingOpusAnalyzer:
        analyzer = StreamingOpusAnalyzer(LIMITS)
        for piece in pieces:
            analyzer.feed(piece)
        return analyzer

    rows.append(
        Row(
            f"finish 60 s WebM/Opus ({frame_ms} ms packets): analyzer fed all but the last 1 s",
            median_ms_with(
                lambda: fed(seconds[:-1]), lambda a: process(src, dst, LIMITS, analyzer=a), runs
            ),
            "<= 50",
        )
    )
    rows.append(
        Row(
            f"finish 60 s WebM/Opus ({frame_ms} ms packets): analyzer fed everything",
            median_ms_with(
                lambda: fed(seconds), lambda a: process(src, dst, LIMITS, analyzer=a), runs
            ),
            "<= 50",
        )
    )
    analyzer = StreamingOpusAnalyzer(LIMITS)
    per_chunk = []
    for piece in seconds:
        start = time.perf_counter()
        analyzer.feed(piece)
        per_chunk.append(time.perf_counter() - start)
    rows.append(
        Row(
            "render_mp3 of the 60 s result",
            median_ms(lambda: render_mp3(dst, work / "finish.mp3"), runs),
        )
    )
    rows.append(
        Row(
            "  analyzer.feed() of one 1 s chunk (during the recording)",
            statistics.median(per_chunk) * 1000,
            note="median over the 60 chunks",
        )
    )

    extradata, packets = packets_of(src)
    rows.append(Row("  breakdown: demux only", median_ms(lambda: demux_only(src), runs)))
    rows.append(
        Row(
            "  breakdown: remux only (demux + Ogg mux, no decode)",
            median_ms(lambda: remux_only(src, work / "remux.ogg"), runs),
        )
    )
    rows.append(
        Row(
            "  breakdown: decode 60 s, FFmpeg native opus decoder",
            median_ms(lambda: decode_all(extradata, packets), runs),
        )
    )
    rows.append(
        Row(
            "  option: decode 60 s with libopus instead",
            median_ms(lambda: decode_all(extradata, packets, "libopus"), runs),
        )
    )
    pool = ThreadPoolExecutor(2)

    def two_threads() -> None:
        # Second half starts 4 packets early (80 ms pre-roll) so its decoder has converged.
        half = len(packets) // 2
        a = pool.submit(decode_all, extradata, packets[:half])
        b = pool.submit(decode_all, extradata, packets[half - 4 :])
        a.result()
        b.result()

    rows.append(
        Row(
            "  option: decode 60 s split over 2 threads (80 ms pre-roll)",
            median_ms(two_threads, runs),
            note=f"{os.cpu_count()} CPUs",
        )
    )
    pool.shutdown()
    return rows


def bench_transcode(work: Path, runs: int) -> list[Row]:
    """The three contenders run interleaved (A B C, A B C ...) so that load from other processes
    on a shared machine hits them alike; the ratio is the median of the per-round ratios."""
    src = work / "memo-10min.m4a"
    make_input(src, "ipod", "aac", 600, 44_100, 64_000)
    ffmpeg = shutil.which("ffmpeg")
    cmd = [
        ffmpeg or "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(src),
        "-c:a",
        "libopus",
        "-b:a",
        "32k",
        "-ac",
        "1",
        str(work / "ffmpeg.ogg"),
    ]
    contenders: dict[str, Callable[[], object]] = {
        "ours": lambda: process(src, work / "ours.ogg", LIMITS),
        "plain": lambda: plain_transcode(src, work / "plain.ogg"),
    }
    if ffmpeg:
        contenders["ffmpeg"] = lambda: subprocess.run(cmd, check=True)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(runs + 1):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            if i:
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    base = "ffmpeg" if ffmpeg else "plain"
    ratio = statistics.median(a / b for a, b in zip(times["ours"], times[base], strict=True))
    rows = [Row("transcode 10 min M4A/AAC: process() (Ogg/Opus + waveform)", med["ours"])]
    if ffmpeg:
        rows.append(
            Row(
                "transcode 10 min M4A/AAC: ffmpeg -c:a libopus -b:a 32k -ac 1",
                med["ffmpeg"],
                note=ffmpeg_version(ffmpeg),
            )
        )
    else:
        rows.append(Row("  (no ffmpeg binary: the ratio is against the plain PyAV transcode)", 0))
    rows.append(Row(f"transcode ratio process() / {base}", ratio, "<= 1.2", note="ratio"))
    rows.append(
        Row(
            "  plain PyAV transcode, same encoder settings, no waveform",
            med["plain"],
            note="same FFmpeg/libopus as process()",
        )
    )
    rows.append(Row("  breakdown: decode AAC only", median_ms(lambda: decode_file(src), runs)))
    start = time.perf_counter()
    render_mp3(work / "ours.ogg", work / "ours.mp3")
    rows.append(Row("render_mp3 of the 10 min result (1 run)", (time.perf_counter() - start) * 1e3))
    return rows


def decode_file(path: Path) -> int:
    with av.open(str(path)) as inp:
        return sum(frame.samples for frame in inp.decode(audio=0))


def plain_transcode(src: Path, dst: Path) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="ogg") as out:
        ost = out.add_stream("libopus", rate=48_000, layout="mono")
        ost.bit_rate = 32_000
        ost.options = {"application": "voip"}
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48_000)
        pts = 0
        for frame in [*inp.decode(audio=0), None]:
            for f in resampler.resample(frame):
                f.pts, f.time_base = pts, Fraction(1, 48_000)
                pts += f.samples
                out.mux(ost.encode(f))
        out.mux(ost.encode(None))


def bench_long(work: Path) -> list[Row]:
    rows = []
    webm = work / "voice-60min.webm"
    make_input(webm, "webm", "libopus", 3600, 48_000, 32_000, application="voip")
    start = time.perf_counter()
    process(webm, work / "long1.ogg", LIMITS)
    rows.append(
        Row("60 min WebM/Opus: process(), cold (1 run)", (time.perf_counter() - start) * 1e3)
    )
    m4a = work / "voice-60min.m4a"
    make_input(m4a, "ipod", "aac", 3600, 44_100, 64_000)
    start = time.perf_counter()
    process(m4a, work / "long2.ogg", LIMITS)
    rows.append(
        Row("60 min M4A/AAC: process() transcode (1 run)", (time.perf_counter() - start) * 1e3)
    )
    return rows


# --- report -------------------------------------------------------------------------------------


def ffmpeg_version(binary: str) -> str:
    out = subprocess.run([binary, "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" Copyright")[0] if out else "ffmpeg"


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs = ", ".join(
        f"{k} {'.'.join(map(str, v))}"
        for k, v in av.library_versions.items()
        if k in ("libavcodec", "libavformat")
    )
    return [
        f"nproc {os.cpu_count()}, CPU {cpu}, load average {os.getloadavg()[0]:.2f} at start",
        f"Python {platform.python_version()}, PyAV {av.__version__} ({libs}), "
        f"NumPy {np.__version__}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--long", action="store_true", help="also time 60-minute files, 1 run")
    parser.add_argument("--keep", type=Path, help="keep the generated files in this directory")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="voxbox-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for line in machine():
            print(line)
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        rows = bench_finish(work, args.runs, 20) + bench_finish(work, args.runs, 60)
        rows += bench_transcode(work, args.runs)
        if args.long:
            rows += bench_long(work)
        width = max(len(r.name) for r in rows)
        print(f"\n{'measurement':<{width}}  {'median':>10}  {'target':>7}  note")
        for r in rows:
            value = f"{r.ms:.2f}" if r.note == "ratio" else f"{r.ms:.1f} ms"
            print(f"{r.name:<{width}}  {value:>10}  {r.target:>7}  {r.note}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
