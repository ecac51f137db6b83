#!/usr/bin/env python3
"""Chat export benchmark against a real ``voxbox serve`` (issue 8): memory stays flat.

The server is started the way ``benchmarks/messaging.py`` does it (a fresh data dir, or a fresh
PostgreSQL database; waits for /healthz). Two users and a direct chat, then:

- ``--messages`` texts (default 10,000), posted 16 at a time;
- ``--files`` audio files (default 10) of ``--file-mb`` MB each (default 100: 1 GB in all),
  each a different 16 kHz mono WAV (a tone and noise of its own seed, so no two are
  deduplicated), uploaded with tus in 8 MiB PATCHes and posted as audio messages; the export
  carries their original bytes. The script waits until every file is processed.

Then ``GET /chats/{id}/export?media=true`` is read to the end (and thrown away) while the
server's VmRSS is sampled every 50 ms: reported are the RSS before, the peak, the growth
(target: <= 100 MB), the zip's size, the time and MB/s.

    .venv/bin/python benchmarks/export.py [--backend sqlite|postgres] [--messages 10000] \\
        [--files 10] [--file-mb 100] [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
import uuid
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from messaging import Server, ServerConfig, machine_info
from uploads import API, RssSampler, loadavg, proc_status_kib, register, tus_create, tus_patch

MB = 1000 * 1000
PATCH = 8 * 1024 * 1024
RATE = 16_000
RSS_TARGET_MB = 100.0


def wav_header(data_bytes: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"")
    header = bytearray(out.getvalue())
    header[4:8] = (36 + data_bytes).to_bytes(4, "little")
    header[40:44] = data_bytes.to_bytes(4, "little")
    return bytes(header)


async def wav_body(seed: int, data_bytes: int) -> AsyncIterator[bytes]:
    """A WAV of ``data_bytes`` of samples, made a block at a time (never whole in memory)."""
    rng = np.random.default_rng(seed)
    yield wav_header(data_bytes)
    done, t0 = 0, 0
    freq = 200 + 40 * seed
    while done < data_bytes:
        n = min(PATCH // 2, (data_bytes - done) // 2)
        t = (np.arange(n) + t0) / RATE
        samples = 8000 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 800, n)
        block = samples.astype("<i2").tobytes()
        t0 += n
        done += len(block)
        yield block
        await asyncio.sleep(0)


async def upload_wav(http: httpx.AsyncClient, chat_id: str, seed: int, size: int) -> str:
    data_bytes = size - 44
    uid = await tus_create(
        http, size, filename=f"recording-{seed}.wav", kind="audio", chat_id=chat_id,
        content_type="audio/wav",
    )  # fmt: skip
    offset, pending = 0, bytearray()
    async for block in wav_body(seed, data_bytes):
        pending += block
        while len(pending) >= PATCH:
            offset = await tus_patch(http, uid, offset, bytes(pending[:PATCH]), PATCH)
            del pending[:PATCH]
    if pending:
        offset = await tus_patch(http, uid, offset, bytes(pending), len(pending))
    return uid


async def post(http: httpx.AsyncClient, chat_id: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(
        f"{API}/chats/{chat_id}/messages", json={"client_id": uuid.uuid4().hex, **body}
    )
    if r.status_code != 201:
        raise RuntimeError(f"post: {r.status_code} {r.text[:200]}")
    result: dict[str, Any] = r.json()
    return result


async def fill(base: str, args: argparse.Namespace) -> tuple[httpx.AsyncClient, str]:
    _, alice = await register(base, f"alice{uuid.uuid4().hex[:8]}")
    bob_handle, bob = await register(base, f"bob{uuid.uuid4().hex[:8]}")
    r = await alice.post(f"{API}/chats", json={"kind": "direct", "handle": bob_handle})
    chat_id: str = r.json()["id"]
    started = time.perf_counter()
    queue = list(range(args.messages))

    async def sender(http: httpx.AsyncClient) -> None:
        while queue:
            n = queue.pop()
            await post(http, chat_id, {"kind": "text", "text": f"message {n}: " + "words " * 8})

    await asyncio.gather(*(sender(alice if i % 2 else bob) for i in range(16)))
    print(f"  {args.messages:,} texts in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    media_ids = []
    for seed in range(args.files):
        uid = await upload_wav(bob, chat_id, seed, int(args.file_mb * MB))
        message = await post(bob, chat_id, {"kind": "audio", "upload_id": uid})
        media_ids.append(message["media"]["id"])
    for media_id in media_ids:  # long files are processed in the background
        while (await bob.get(f"{API}/media/{media_id}")).json()["state"] == "processing":  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    print(
        f"  {args.files} audio files of {args.file_mb:g} MB posted and processed in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    await bob.aclose()
    return alice, chat_id


async def export_once(server: Server, http: httpx.AsyncClient, chat_id: str) -> dict[str, Any]:
    before = proc_status_kib(server.pid, "VmRSS") or 0
    sampler = RssSampler(server.pid)
    sampler.start()
    size, started = 0, time.perf_counter()
    try:
        async with http.stream(
            "GET", f"{API}/chats/{chat_id}/export", params={"media": "true"}, timeout=None
        ) as r:
            if r.status_code != 200:
                raise RuntimeError(f"export: {r.status_code}")
            async for chunk in r.aiter_raw():
                size += len(chunk)
    finally:
        sampler.stop()
    seconds = time.perf_counter() - started
    peak = max(sampler.peak_kib, before)
    return {
        "rss_before_mb": round(before * 1024 / MB, 1),
        "rss_peak_mb": round(peak * 1024 / MB, 1),
        "rss_growth_mb": round((peak - before) * 1024 / MB, 1),
        "zip_mb": round(size / MB, 1),
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / MB / seconds, 1),
    }


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, load {loadavg()}", flush=True)
    config = ServerConfig(
        backend=args.backend,
        pg_admin_url=args.pg_admin_url,
        redis_url=None,
        log_level="WARNING",
        voxbox=str(Path(sys.executable).parent / "voxbox"),
        keep_logs=None,
        extra_env={},
    )
    server = Server(config, f"export-{args.backend}")
    runs: list[dict[str, Any]] = []
    try:
        await server.start()
        http, chat_id = await fill(server.base, args)
        try:
            for run in range(1, args.runs + 1):
                result = await export_once(server, http, chat_id)
                runs.append(result)
                print(f"  run {run}: {result}", flush=True)
        finally:
            await http.aclose()
        errors = server.errors()
        if errors:
            print(f"  ! server log errors: {errors}")
    finally:
        await server.stop()
    growth = statistics.median(r["rss_growth_mb"] for r in runs)
    verdict = "met" if growth <= RSS_TARGET_MB else "MISSED"
    print(
        f"median of {len(runs)}: RSS growth {growth} MB (target <= {RSS_TARGET_MB:g}: {verdict}), "
        f"{statistics.median(r['mb_per_s'] for r in runs)} MB/s, "
        f"zip {runs[0]['zip_mb']} MB",
        flush=True,
    )
    if args.json:
        report = {"machine": info, "args": vars(args), "runs": runs}
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--file-mb", type=float, default=100.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
