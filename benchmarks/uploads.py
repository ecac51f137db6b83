#!/usr/bin/env python3
"""Voice messages and uploads benchmark against a real ``voxbox serve`` (issue 3).

The server is started the way ``benchmarks/messaging.py`` does it (its ``Server``: a fresh data
dir, and on PostgreSQL a fresh database, per backend; waits for /healthz) and driven over
loopback with httpx from this process.

1. send: finish + post of a 60 s WebM/Opus recording, as a user experiences "send". Two users
   with a direct chat; every run makes a DIFFERENT 60 s recording (another tone and noise seed,
   so the sha256 differs: identical bytes would be deduplicated by the server) and uploads it
   like MediaRecorder: tus POST with ``Upload-Defer-Length: 1`` and metadata kind=voice,
   chat_id, content_type, then 60 PATCHes of ~1 s each (the last one with ``Upload-Length``).
   Only ``POST /chats/{id}/messages {client_id, kind: "voice", upload_id}`` is timed, until
   its 201. Target: median <= 50 ms. For comparison, the same with the recording uploaded in
   one PATCH of known length: without kind metadata (the server cannot analyse while
   recording: the full-decode ``remux`` path) and with kind=voice (the one PATCH is analysed
   on arrival). The server's ``voxbox_media_process_seconds`` (pipeline),
   ``voxbox_message_send_seconds`` and ``voxbox_http_request_seconds`` histograms are read
   from /metrics around every POST, so each run also says which path ran and where the
   server spent its time.
2. big: a 1 GiB upload through tus (``Upload-Length``, then 8 MiB PATCHes whose bodies are
   pseudo-random bytes generated while streaming): MiB/s, and the server's peak RSS growth
   (VmRSS sampled every 50 ms during the upload; VmHWM before/after). Target: <= 100 MB.
   The upload is DELETEd afterwards.

    .venv/bin/python benchmarks/uploads.py [--runs 15] [--backend sqlite|postgres|both] \\
        [--part send|big|all] [--json FILE] [--profile DIR]

Every request has a timeout and every loop a bound, so a run always ends.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from messaging import (
    Profiler,
    Server,
    ServerConfig,
    machine_info,
    percentile,
    process_cpu,
    scrape,
)

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}
PASSWORD = "benchmark-password"
RATE = 48_000
OPUS_FRAME = 960  # 20 ms at 48 kHz
MIB = 1024 * 1024
SEND_TARGET_MS = 50.0
RSS_TARGET_BYTES = 100 * 1000 * 1000  # 100 MB
REQUEST_TIMEOUT = 120.0
RSS_INTERVAL = 0.05


# --------------------------------------------------------------------------------------------
# small helpers


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def proc_status_kib(pid: int, field_name: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler:
    """Samples a process's VmRSS every ``interval`` s in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = RSS_INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status_kib(self.pid, "VmRSS")
            if rss is not None:
                self.peak_kib = max(self.peak_kib, rss)
                self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": math.nan, "p90": math.nan, "max": math.nan, "min": math.nan}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p90": round(percentile(values, 90), 2),
        "max": round(max(values), 2),
        "min": round(min(values), 2),
    }


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def split(data: bytes, count: int) -> list[bytes]:
    """``data`` in ``count`` pieces of (nearly) equal size, as a recorder's timeslices."""
    bounds = [len(data) * i // count for i in range(count + 1)]
    return [data[bounds[i] : bounds[i + 1]] for i in range(count)]


# --------------------------------------------------------------------------------------------
# recordings


class _StreamSink:
    """A write-only sink: the WebM muxer cannot seek back, so it writes what MediaRecorder
    does (unknown-size segment and clusters, no duration, no cues)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def close(self) -> None:
        pass


def make_recording(seconds: float, seed: int) -> bytes:
    """``seconds`` of speech-like WebM/Opus (mono 48 kHz, 32 kbps, 1 s clusters); a different
    tone and noise for every seed, so every recording has its own sha256."""
    rng = np.random.default_rng(seed)
    f0 = 110.0 + 1.7 * (seed % 100)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2 * np.sin(2 * np.pi * 0.5 * t)
    tone = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 1.5 * f0 * t)
    samples = (0.4 * envelope * tone + rng.normal(0, 0.01, len(t))).astype(np.float32)
    sink = _StreamSink()
    options = {"live": "1", "cluster_time_limit": "1000"}
    with av.open(sink, "w", format="webm", options=options) as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 32_000
        for start in range(0, len(samples), OPUS_FRAME):
            block = samples[start : start + OPUS_FRAME]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            frame.time_base = Fraction(1, RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return b"".join(sink.parts)


# --------------------------------------------------------------------------------------------
# the server's metrics

PATHS = ("streamed", "remux", "transcode")


def _pipeline_key(suffix: str, path: str) -> str:
    return f'voxbox_media_process_seconds_{suffix}{{path="{path}"}}'


def _post_message_key(keys: Sequence[str]) -> str | None:
    for key in keys:
        if (
            key.startswith("voxbox_http_request_seconds_sum{")
            and 'method="POST"' in key
            and key.endswith('/messages"}')
            and "/chats/" in key
        ):
            return key
    return None


def delta(before: dict[str, float], after: dict[str, float], key: str | None) -> float:
    if key is None:
        return math.nan
    return after.get(key, 0.0) - before.get(key, 0.0)


# --------------------------------------------------------------------------------------------
# --breakdown: where a finish+post spends its time, from inside the server

# A launcher for `voxbox serve` that wraps the steps of finishing an upload with timers (they
# are looked up as module attributes at call time, so replacing them is enough) and appends one
# JSON line per voice/audio send to $UPLOADS_BENCH_BREAKDOWN: seconds per step, calls per step
# ("name#"), and the thread hand-offs (asyncio.to_thread) awaited during the send. Benchmark
# use only: it patches private functions and breaks silently (missing keys) if they move.
BREAKDOWN_LAUNCHER = """
import asyncio, functools, json, os, sys, time
import voxbox.core.media.ingest as media
import voxbox.core.media.processing as processing
import voxbox.core.messages as messages
import voxbox.media as pipeline
from voxbox.storage.local import LocalBlobStore
from voxbox.cli.main import main

LOG = os.environ["UPLOADS_BENCH_BREAKDOWN"]
acc = {}

def add(label, seconds):
    acc[label] = acc.get(label, 0.0) + seconds
    acc[label + "#"] = acc.get(label + "#", 0) + 1

def timed(owner, name, label):
    orig = getattr(owner, name)
    if asyncio.iscoroutinefunction(orig):
        async def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return await orig(*args, **kwargs)
            finally:
                add(label, time.perf_counter() - start)
    else:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                add(label, time.perf_counter() - start)
    setattr(owner, name, functools.wraps(orig)(wrapper))

timed(messages, "finish_upload", "finish_upload")
for name in ("_ingest", "_assemble", "_drop_upload", "delete_blobs"):
    timed(media, name, name.lstrip("_"))
timed(processing, "process_source", "process")
timed(processing, "sha256_file", "sha256_ogg (thread)")
timed(pipeline, "probe", "probe (thread)")
timed(pipeline, "process", "pipeline.process (thread)")
timed(LocalBlobStore, "put_file", "put_file")
timed(LocalBlobStore, "open", "open_part")
timed(asyncio, "to_thread", "to_thread")

send = messages.send_message

async def send_message(*args, **kwargs):
    acc.clear()
    start = time.perf_counter()
    try:
        return await send(*args, **kwargs)
    finally:
        acc["send_message"] = time.perf_counter() - start
        if kwargs.get("upload_id"):
            with open(LOG, "a") as f:
                f.write(json.dumps(acc) + "\\n")

messages.send_message = send_message
sys.argv[0] = "voxbox"
sys.exit(main())
"""


def write_launcher(directory: Path) -> Path:
    path = directory / "voxbox-breakdown"
    path.write_text(f"#!{sys.executable}\n{BREAKDOWN_LAUNCHER}")
    path.chmod(0o755)
    return path


def last_breakdown(log: Path | None) -> dict[str, float]:
    if log is None or not log.exists():
        return {}
    lines = log.read_text().splitlines()
    parsed: dict[str, float] = json.loads(lines[-1]) if lines else {}
    return parsed


def breakdown_rows(b: dict[str, float]) -> dict[str, float]:
    """Per-step milliseconds of one send, with the remainders named by what they contain."""
    get = b.get

    def ms_(*keys: str, minus: Sequence[str] = ()) -> float:
        return 1000 * (sum(get(k, 0.0) for k in keys) - sum(get(k, 0.0) for k in minus))

    return {
        "send_message": ms_("send_message"),
        "message: read + write txn, publish": ms_("send_message", minus=["finish_upload"]),
        "finish: mark finishing txn, part keys, cleanup": ms_(
            "finish_upload", minus=["ingest", "drop_upload"]
        ),
        "assemble parts + sha256": ms_("assemble"),
        "probe": ms_("probe (thread)"),
        "pipeline.process": ms_("pipeline.process (thread)"),
        "sha256 of the ogg": ms_("sha256_ogg (thread)"),
        "put_file (ogg blob)": ms_("put_file"),
        "process: hand-offs": ms_(
            "process", minus=["pipeline.process (thread)", "sha256_ogg (thread)", "put_file"]
        ),
        "ingest: mkdir, twin lookup, media insert": ms_(
            "ingest", minus=["assemble", "probe (thread)", "process"]
        ),
        "delete part blobs": ms_("delete_blobs"),
        "delete upload txn": ms_("drop_upload", minus=["delete_blobs"]),
        "to_thread calls": get("to_thread#", 0.0),
        "awaited in to_thread": ms_("to_thread"),
        "part blobs opened": get("open_part#", 0.0),
    }


# --------------------------------------------------------------------------------------------
# clients


def client(base: str, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        base_url=base,
        headers=headers,
        timeout=httpx.Timeout(REQUEST_TIMEOUT),
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
    )


async def register(base: str, handle: str) -> tuple[str, httpx.AsyncClient]:
    async with client(base) as anon:
        r = await anon.post(f"{API}/auth/register", json={"handle": handle, "password": PASSWORD})
    if r.status_code != 201:
        raise RuntimeError(f"register {handle}: {r.status_code} {r.text[:200]}")
    token: str = r.json()["token"]
    return handle, client(base, token)


async def tus_create(http: httpx.AsyncClient, length: int | None, **meta: str) -> str:
    headers = dict(TUS)
    if length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(length)
    headers["Upload-Metadata"] = tus_metadata(**meta)
    r = await http.post(f"{API}/uploads", headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"tus POST: {r.status_code} {r.text[:200]}")
    return r.headers["Location"].rsplit("/", 1)[-1]


async def tus_patch(
    http: httpx.AsyncClient,
    uid: str,
    offset: int,
    body: bytes | AsyncIterator[bytes],
    size: int,
    *,
    length: int | None = None,
) -> int:
    """One PATCH; returns the new offset."""
    headers = {
        **TUS,
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(size),
        "Upload-Offset": str(offset),
    }
    if length is not None:
        headers["Upload-Length"] = str(length)
    r = await http.patch(f"{API}/uploads/{uid}", headers=headers, content=body)
    if r.status_code != 204:
        raise RuntimeError(f"tus PATCH at {offset}: {r.status_code} {r.text[:200]}")
    new_offset = int(r.headers["Upload-Offset"])
    if new_offset != offset + size:
        raise RuntimeError(f"tus PATCH at {offset}: offset {new_offset}, not {offset + size}")
    return new_offset


# --------------------------------------------------------------------------------------------
# 1. finish + post


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    pieces: int
    deferred: bool  # Upload-Defer-Length (a recording) or Upload-Length up front (a file)
    kind_meta: bool  # metadata kind=voice: the server analyses PATCHes as they arrive


VARIANTS = (
    Variant("recorded", "60 PATCHes of ~1 s, deferred length, kind=voice", 60, True, True),
    Variant("one_piece", "1 PATCH, known length, no kind metadata", 1, False, False),
    Variant("one_piece_voice", "1 PATCH, known length, kind=voice", 1, False, True),
)


@dataclass
class SendRun:
    variant: str
    run: int  # 0-based; runs < warmup are not counted
    bytes: int
    upload_s: float
    client_ms: float
    server_http_ms: float
    message_send_ms: float
    pipeline_ms: float
    paths: dict[str, int]
    duration_ms: int | None
    breakdown: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


async def upload_recording(
    http: httpx.AsyncClient, variant: Variant, data: bytes, chat_id: str, pace: float
) -> str:
    meta = {"content_type": "audio/webm;codecs=opus", "chat_id": chat_id}
    if variant.kind_meta:
        meta["kind"] = "voice"
    uid = await tus_create(http, None if variant.deferred else len(data), **meta)
    offset = 0
    pieces = split(data, variant.pieces)
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        length = len(data) if last and variant.deferred else None
        offset = await tus_patch(http, uid, offset, piece, len(piece), length=length)
        if pace and not last:
            await asyncio.sleep(pace)
    return uid


async def bench_send(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    (_, alice), (bob_handle, bob) = await asyncio.gather(
        register(server.base, f"alice_{tag}"), register(server.base, f"bob_{tag}")
    )
    variants = [v for v in VARIANTS if v.name in args.variants]
    runs: list[SendRun] = []
    hashes: set[str] = set()
    try:
        r = await alice.post(f"{API}/chats", json={"kind": "direct", "handle": bob_handle})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"create chat: {r.status_code} {r.text[:200]}")
        chat_id: str = r.json()["id"]
        total = args.warmup + args.runs
        seed = args.seed
        for run in range(total):
            for variant in variants:
                seed += 1
                data = await asyncio.to_thread(make_recording, args.seconds, seed)
                sha = hashlib.sha256(data).hexdigest()
                if sha in hashes:
                    raise RuntimeError(f"seed {seed} made the same bytes as an earlier run")
                hashes.add(sha)
                u0 = time.perf_counter()
                uid = await upload_recording(alice, variant, data, chat_id, args.pace)
                upload_s = time.perf_counter() - u0
                if args.settle:
                    await asyncio.sleep(args.settle)
                before = await scrape(alice)
                body = {"client_id": f"{variant.name}-{run}-{tag}", "kind": "voice"}
                body["upload_id"] = uid
                start = time.perf_counter()
                r = await alice.post(f"{API}/chats/{chat_id}/messages", json=body)
                elapsed = time.perf_counter() - start
                if r.status_code != 201:
                    raise RuntimeError(f"post voice: {r.status_code} {r.text[:300]}")
                after = await scrape(alice)
                media = r.json().get("media") or {}
                paths = {p: round(delta(before, after, _pipeline_key("count", p))) for p in PATHS}
                pipeline_s = sum(delta(before, after, _pipeline_key("sum", p)) for p in PATHS)
                sample = SendRun(
                    variant=variant.name,
                    run=run,
                    bytes=len(data),
                    upload_s=upload_s,
                    client_ms=elapsed * 1000,
                    server_http_ms=1000 * delta(before, after, _post_message_key(list(after))),
                    message_send_ms=1000 * delta(before, after, "voxbox_message_send_seconds_sum"),
                    pipeline_ms=pipeline_s * 1000,
                    paths={p: n for p, n in paths.items() if n},
                    duration_ms=media.get("duration_ms"),
                    breakdown=breakdown_rows(b)
                    if (b := last_breakdown(args.breakdown_log))
                    else {},
                )
                runs.append(sample)
                if args.verbose:
                    print(
                        f"    {variant.name:16} run {run:2} {sample.client_ms:7.1f} ms "
                        f"(pipeline {sample.pipeline_ms:6.1f} ms, {sample.paths})",
                        flush=True,
                    )
    finally:
        await asyncio.gather(alice.aclose(), bob.aclose())
    result: dict[str, Any] = {"variants": {}, "runs": [x.as_dict() for x in runs]}
    for variant in variants:
        counted = [x for x in runs if x.variant == variant.name and x.run >= args.warmup]
        warm = [x for x in runs if x.variant == variant.name and x.run < args.warmup]
        totals: dict[str, int] = {}
        for item in counted:
            for p, n in item.paths.items():
                totals[p] = totals.get(p, 0) + n
        durations = {item.duration_ms for item in counted}
        result["variants"][variant.name] = {
            "what": variant.what,
            "client_ms": summary([x.client_ms for x in counted]),
            "server_http_ms": summary([x.server_http_ms for x in counted]),
            "message_send_ms": summary([x.message_send_ms for x in counted]),
            "pipeline_ms": summary([x.pipeline_ms for x in counted]),
            "rest_ms": summary([x.message_send_ms - x.pipeline_ms for x in counted]),
            "upload_s": summary([x.upload_s for x in counted]),
            "bytes": summary([float(x.bytes) for x in counted]),
            "path_counts": totals,
            "duration_ms": sorted(d for d in durations if d is not None),
            "warmup_client_ms": [round(x.client_ms, 2) for x in warm],
            "breakdown_ms": {
                k: round(statistics.median([x.breakdown[k] for x in counted]), 2)
                for k in (counted[0].breakdown if counted else {})
            },
        }
    return result


# --------------------------------------------------------------------------------------------
# 2. a 1 GiB upload


async def random_body(rng: np.random.Generator, size: int, block: int) -> AsyncIterator[bytes]:
    """``size`` pseudo-random bytes, ``block`` at a time (the client never holds more)."""
    left = size
    while left > 0:
        n = min(block, left)
        yield rng.bytes(n)
        left -= n


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


async def bench_big(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    size = args.big_mib * MIB
    patch_size = args.patch_mib * MIB
    assert server.tmp is not None
    free = shutil.disk_usage(server.tmp).free
    if free < 2 * size:
        raise RuntimeError(f"only {free / MIB:.0f} MiB free under {server.tmp}, need {2 * size}")
    _, carol = await register(server.base, f"carol_{uuid.uuid4().hex[:6]}")
    rng = np.random.default_rng(args.seed)
    pid = server.pid
    try:
        await asyncio.sleep(1.0)  # let the server settle after registration
        rss0 = proc_status_kib(pid, "VmRSS") or 0
        hwm0 = proc_status_kib(pid, "VmHWM") or 0
        sampler = RssSampler(pid)
        sampler.start()
        patch_s: list[float] = []
        cpu0, sys0, _ = process_cpu(pid)
        client0, start = time.process_time(), time.perf_counter()
        try:
            uid = await tus_create(
                carol, size, filename="big.bin", content_type="application/octet-stream"
            )
            offset = 0
            for _ in range(math.ceil(size / patch_size)):
                n = min(patch_size, size - offset)
                p0 = time.perf_counter()
                offset = await tus_patch(carol, uid, offset, random_body(rng, n, MIB), n)
                patch_s.append(time.perf_counter() - p0)
            wall = time.perf_counter() - start
        finally:
            client_cpu = time.process_time() - client0
            cpu1, sys1, _ = process_cpu(pid)
            sampler.stop()
        hwm1 = proc_status_kib(pid, "VmHWM") or 0
        rss1 = proc_status_kib(pid, "VmRSS") or 0
        head = await carol.head(f"{API}/uploads/{uid}", headers=TUS)
        stored = tree_bytes(server.tmp)
        deleted = await carol.delete(f"{API}/uploads/{uid}", headers=TUS)
        after_delete = tree_bytes(server.tmp)
    finally:
        await carol.aclose()
    peak = max(sampler.peak_kib, rss1)
    return {
        "bytes": size,
        "patch_bytes": patch_size,
        "patches": len(patch_s),
        "seconds": round(wall, 3),
        "mib_per_s": round(size / MIB / wall, 1),
        "patch_ms": summary([s * 1000 for s in patch_s]),
        "head_offset": int(head.headers.get("Upload-Offset", -1)),
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
        "server_sys_cpu_pct": round(100 * (sys1 - sys0) / wall, 1),
        "client_cpu_pct": round(100 * client_cpu / wall, 1),
        "rss_before_mib": round(rss0 / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_after_mib": round(rss1 / 1024, 1),
        "rss_growth_mb": round((peak - rss0) * 1024 / 1e6, 1),
        "rss_samples": sampler.samples,
        "hwm_before_mib": round(hwm0 / 1024, 1),
        "hwm_after_mib": round(hwm1 / 1024, 1),
        "data_dir_mib_before_delete": round(stored / MIB, 1),
        "delete_status": deleted.status_code,
        "data_dir_mib_after_delete": round(after_delete / MIB, 1),
    }


# --------------------------------------------------------------------------------------------
# main


def _fmt(x: float) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.1f}"


def print_send(backend: str, result: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\n== {backend} finish + post of a {args.seconds:g} s WebM/Opus recording "
        f"({args.runs} runs each, after {args.warmup} warm-up), ms"
    )
    cols = ("variant", "median", "p90", "max", "srv http", "send", "pipeline", "rest", "paths")
    print(
        f"  {cols[0]:16} {cols[1]:>7} {cols[2]:>7} {cols[3]:>7} {cols[4]:>9} {cols[5]:>7} "
        f"{cols[6]:>9} {cols[7]:>7}  {cols[8]}"
    )
    for name, v in result["variants"].items():
        c = v["client_ms"]
        print(
            f"  {name:16} {_fmt(c['median']):>7} {_fmt(c['p90']):>7} {_fmt(c['max']):>7} "
            f"{_fmt(v['server_http_ms']['median']):>9} {_fmt(v['message_send_ms']['median']):>7} "
            f"{_fmt(v['pipeline_ms']['median']):>9} {_fmt(v['rest_ms']['median']):>7}  "
            f"{v['path_counts']}"
        )
    for name, v in result["variants"].items():
        if v["breakdown_ms"]:
            print(f"  --breakdown {name} (medians per step, ms):")
            for step, value in v["breakdown_ms"].items():
                print(f"    {step:46} {value:8.2f}")
    if "recorded" not in result["variants"]:
        return
    med = result["variants"]["recorded"]["client_ms"]["median"]
    ok = med <= SEND_TARGET_MS
    print(
        f"  target: recorded median <= {SEND_TARGET_MS:g} ms: {med:.1f} ms, "
        f"{'met' if ok else 'MISSED'}"
    )
    print(
        "  (srv http / send / pipeline / rest: server-side medians from /metrics; rest = send "
        "- pipeline: assembling parts, sha256, blob writes, DB)"
    )


def print_big(backend: str, r: dict[str, Any]) -> None:
    print(
        f"\n== {backend} {r['bytes'] / MIB:.0f} MiB upload in {r['patches']} PATCHes of "
        f"{r['patch_bytes'] / MIB:.0f} MiB"
    )
    print(
        f"  {r['seconds']:.1f} s, {r['mib_per_s']:.1f} MiB/s; PATCH median "
        f"{r['patch_ms']['median']:.0f} ms, max {r['patch_ms']['max']:.0f} ms"
    )
    print(
        f"  server CPU {r['server_cpu_pct']}% of a core (kernel {r['server_sys_cpu_pct']}%), "
        f"client CPU {r['client_cpu_pct']}%"
    )
    ok = r["rss_growth_mb"] * 1e6 <= RSS_TARGET_BYTES
    print(
        f"  server RSS {r['rss_before_mib']} MiB -> peak {r['rss_peak_mib']} MiB "
        f"({r['rss_samples']} samples) -> {r['rss_after_mib']} MiB; growth "
        f"{r['rss_growth_mb']} MB (target <= 100 MB: {'met' if ok else 'MISSED'}); "
        f"VmHWM {r['hwm_before_mib']} -> {r['hwm_after_mib']} MiB"
    )
    print(
        f"  data dir {r['data_dir_mib_before_delete']} MiB; DELETE {r['delete_status']}; "
        f"after {r['data_dir_mib_after_delete']} MiB"
    )


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    voxbox = args.voxbox or str(Path(sys.executable).parent / "voxbox")
    extra_env: dict[str, str] = {}
    launcher_dir: Path | None = None
    args.breakdown_log = None
    if args.breakdown:
        launcher_dir = Path(tempfile.mkdtemp(prefix="voxbox-bench-breakdown-"))
        voxbox = str(write_launcher(launcher_dir))
        args.breakdown_log = launcher_dir / "breakdown.jsonl"
        extra_env["UPLOADS_BENCH_BREAKDOWN"] = str(args.breakdown_log)
    config = ServerConfig(
        backend=backend,
        pg_admin_url=args.pg_admin_url,
        redis_url=None,
        log_level=args.log_level,
        voxbox=voxbox,
        keep_logs=Path(args.keep_logs) if args.keep_logs else None,
        extra_env=extra_env,
    )
    server = Server(config, f"uploads-{backend}")
    out: dict[str, Any] = {"loadavg_start": loadavg()}
    profile_dir = Path(args.profile) if args.profile else None
    try:
        await server.start()
        parts = [("send", bench_send), ("big", bench_big)]
        for name, bench in parts:
            if args.part not in (name, "all"):
                continue
            profiler = None
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                out_file = profile_dir / f"{backend}-uploads-{name}.txt"
                profiler = Profiler(out_file, server.pid, args.profile_rate, not args.profile_wall)
                await profiler.start()
            load0 = loadavg()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(args.timeout):
                    result = await bench(server, args)
            finally:
                if profiler is not None:
                    await profiler.stop()
            result["wall_s"] = round(time.perf_counter() - started, 1)
            result["loadavg_before"], result["loadavg_after"] = load0, loadavg()
            out[name] = result
            if name == "send":
                print_send(backend, result, args)
            else:
                print_big(backend, result)
            print(f"  load average before {load0}, after {result['loadavg_after']}", flush=True)
        out["server_errors"] = server.errors()
        if out["server_errors"]:
            print(f"  ! server log errors: {out['server_errors']}")
    finally:
        await server.stop()
        if launcher_dir is not None:
            shutil.rmtree(launcher_dir, ignore_errors=True)
    return out


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    for dist in ("av", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            info["packages"][dist] = metadata.version(dist)
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"load average {loadavg()}"
    )
    report: dict[str, Any] = {"machine": info, "args": vars(args), "results": {}}
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = False
    for backend in backends:
        try:
            report["results"][backend] = await run_backend(backend, args)
        except Exception as exc:
            failed = True
            print(f"\n!! {backend}: {exc!r}", file=sys.stderr)
            report["results"][backend] = {"error": repr(exc)}
    report["loadavg_end"] = loadavg()
    if args.json:
        text = json.dumps(report, indent=2, default=str) + "\n"
        await asyncio.to_thread(Path(args.json).write_text, text)
        print(f"\nwrote {args.json}")
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--part", choices=["send", "big", "all"], default="all")
    p.add_argument("--runs", type=int, default=15, help="measured finish+post runs per variant")
    p.add_argument("--warmup", type=int, default=1, help="uncounted runs per variant first")
    p.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=[v.name for v in VARIANTS],
        help="comma-separated subset of: " + ", ".join(v.name for v in VARIANTS),
    )
    p.add_argument("--seconds", type=float, default=60.0, help="length of each recording")
    p.add_argument("--pace", type=float, default=0.0, help="sleep between a recording's PATCHes, s")
    p.add_argument("--settle", type=float, default=0.0, help="sleep before the timed POST, s")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--big-mib", type=int, default=1024, help="size of the big upload, MiB")
    p.add_argument("--patch-mib", type=int, default=8, help="PATCH size of the big upload, MiB")
    p.add_argument("--json", metavar="FILE", help="write every run and the summaries here")
    p.add_argument(
        "--pg-admin-url",
        default=os.environ.get("VOXBOX_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL to create the fresh database in (dropped afterwards)",
    )
    p.add_argument("--log-level", default="INFO", help="the server's VOXBOX_LOG_LEVEL")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the server log here")
    p.add_argument("--voxbox", help="the voxbox executable (default: the one next to python)")
    p.add_argument("--timeout", type=float, default=1800, help="deadline per part, s")
    p.add_argument("--profile", metavar="DIR", help="py-spy the server during each part")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--profile-wall", action="store_true", help="py-spy without --gil")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="run the server through a launcher that times each step of finishing an upload",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.big_mib < 1 or args.patch_mib < 1:
        p.error("--runs, --big-mib, --patch-mib >= 1, --warmup >= 0")
    unknown = set(args.variants) - {v.name for v in VARIANTS}
    if unknown or not args.variants:
        p.error(f"unknown --variants: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
