#!/usr/bin/env python3
"""``voxbox sync`` benchmark (issue 8): 1,000 voice notes into a media folder, then again.

Starts ``voxbox serve`` the way ``benchmarks/messaging.py`` does (SQLite, fresh data dir), makes
two users and a direct chat, and posts ``--notes`` different voice notes (``--seconds`` each,
Ogg/Opus made here, 8 posted at a time). Then it runs the sync (``voxbox.client.sync.sync``,
what ``voxbox sync DIR`` runs) into an empty folder, and a second time into the same folder:
wall time, files, bytes and requests of each. The second run should download nothing.

    .venv/bin/python benchmarks/sync.py [--notes 1000] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from messaging import Server, ServerConfig, machine_info
from uploads import API, loadavg, register, tus_create, tus_patch
from voxbox.client.http import VoxboxClient
from voxbox.client.sync import sync

RATE = 48_000


def voice_note(seconds: float, seed: int) -> bytes:
    """Ogg/Opus of a tone of its own pitch plus noise (no two alike, so none is deduplicated)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    samples = 0.3 * np.sin(2 * np.pi * (150 + seed % 400) * t) + rng.normal(0, 0.02, t.size)
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


async def post_notes(base: str, count: int, seconds: float) -> tuple[str, str]:
    """Posts the notes; returns the receiver's handle and token."""
    _, alice = await register(base, f"alice{uuid.uuid4().hex[:8]}")
    bob_handle, bob = await register(base, f"bob{uuid.uuid4().hex[:8]}")
    r = await alice.post(f"{API}/chats", json={"kind": "direct", "handle": bob_handle})
    chat_id = r.json()["id"]
    todo = list(range(count))

    async def poster() -> None:
        while todo:
            seed = todo.pop()
            data = await asyncio.to_thread(voice_note, seconds, seed)
            uid = await tus_create(
                alice, len(data), filename=f"note-{seed}.ogg", kind="voice", chat_id=chat_id
            )
            await tus_patch(alice, uid, 0, data, len(data))
            body = {"client_id": uuid.uuid4().hex, "kind": "voice", "upload_id": uid}
            r = await alice.post(f"{API}/chats/{chat_id}/messages", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"post: {r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(poster() for _ in range(8)))
    print(
        f"  {count:,} voice notes of {seconds:g} s posted in {time.perf_counter() - started:.1f} s"
    )
    token = str(bob.headers["authorization"]).removeprefix("Bearer ")
    await alice.aclose()
    await bob.aclose()
    return bob_handle, token


def timed_sync(base: str, token: str, folder: Path) -> dict[str, Any]:
    requests = 0

    def count(request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    with VoxboxClient(base, token) as client:
        client._http.event_hooks["request"].append(count)
        started = time.perf_counter()
        report = sync(client, folder)
        seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in report.downloaded)
    return {
        "seconds": round(seconds, 2),
        "downloaded": len(report.downloaded),
        "already_there": report.kept,
        "mb": round(size / 1e6, 1),
        "requests": requests,
        "files_per_s": round(len(report.downloaded) / seconds, 1) if report.downloaded else None,
    }


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, load {loadavg()}", flush=True)
    config = ServerConfig.sqlite()
    server = Server(config, "sync")
    firsts, seconds = [], []
    try:
        await server.start()
        _, token = await post_notes(server.base, args.notes, args.seconds)
        for run in range(1, args.runs + 1):
            folder = Path(tempfile.mkdtemp(prefix="voxbox-sync-bench-"))
            try:
                first = await asyncio.to_thread(timed_sync, server.base, token, folder)
                again = await asyncio.to_thread(timed_sync, server.base, token, folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"  run {run}: first {first}\n         second {again}", flush=True)
            firsts.append(first)
            seconds.append(again)
    finally:
        await server.stop()
    print(
        f"median of {args.runs}: first run {statistics.median(r['seconds'] for r in firsts)} s "
        f"({firsts[0]['downloaded']} files, {firsts[0]['mb']} MB), second run "
        f"{statistics.median(r['seconds'] for r in seconds)} s "
        f"({seconds[0]['downloaded']} downloaded, {seconds[0]['requests']} requests)"
    )
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--notes", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=3)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
