#!/usr/bin/env python3
"""Send to transcript (issue 11): how long after a 30 s voice note is sent its transcript is
ready, on a real ``voxbox serve`` (started as ``benchmarks/messaging.py`` does) transcribing with
pocketsphinx, or faster-whisper with ``--whisper DIR``.

The note is the LibriVox clips of ``tests/fixtures/librivox`` one after another, with the first
again until 30 s, as a WebM/Opus recording (what the web app uploads). Each run uploads it
(tus, one PATCH) and sends it; measured is from the send (``POST /chats/{id}/messages``) until
``GET /messages/{id}`` shows the transcript ready, polled every 20 ms. The first run includes
starting the transcription process and loading the model (cold); the others reuse it (warm).

    .venv/bin/python benchmarks/transcript_latency.py [--runs 4] [--whisper DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
import uuid
from pathlib import Path

import av
import httpx
import numpy as np

from messaging import API, Server, ServerConfig, machine_info
from uploads import loadavg

CLIPS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "librivox"
RATE = 48_000


def thirty_seconds_of_speech() -> bytes:
    pieces = []
    for clip in sorted(CLIPS.glob("*.flac")):
        with av.open(str(clip)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(audio=0):
                pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    speech = np.concatenate(pieces)
    speech = np.concatenate([speech, speech])[: 30 * RATE]
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        for start in range(0, len(speech), 960):
            frame = av.AudioFrame.from_ndarray(
                speech[start : start + 960].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate, frame.pts = RATE, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


async def send_once(http: httpx.AsyncClient, chat_id: str, note: bytes) -> float:
    tus = {"Tus-Resumable": "1.0.0"}
    r = await http.post(
        f"{API}/uploads",
        headers={**tus, "Upload-Length": str(len(note)), "Upload-Metadata": ""},
    )
    r.raise_for_status()
    upload = r.headers["Location"].rsplit("/", 1)[-1]
    r = await http.patch(
        f"{API}/uploads/{upload}",
        content=note,
        headers={
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    r.raise_for_status()
    started = time.perf_counter()
    body = {"client_id": str(uuid.uuid4()), "kind": "voice", "upload_id": upload}
    r = await http.post(f"{API}/chats/{chat_id}/messages", json=body)
    r.raise_for_status()
    message_id = r.json()["id"]
    while True:
        transcript = (await http.get(f"{API}/messages/{message_id}")).json()["transcript"]
        if transcript["state"] != "pending":
            assert transcript["state"] == "ready", transcript
            return time.perf_counter() - started
        await asyncio.sleep(0.02)


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, load {loadavg()}", flush=True)
    engine = {"VOXBOX_TRANSCRIBE__ENGINE": "pocketsphinx"}
    if args.whisper:
        engine = {
            "VOXBOX_TRANSCRIBE__ENGINE": "faster-whisper",
            "VOXBOX_TRANSCRIBE__MODEL_DIR": str(args.whisper),
        }
    config = ServerConfig.sqlite(**engine)
    note = await asyncio.to_thread(thirty_seconds_of_speech)
    server = Server(config, "transcript")
    seconds: list[float] = []
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as http:
            r = await http.post(
                f"{API}/auth/register", json={"handle": "talker", "password": "pw-" * 4}
            )
            r.raise_for_status()
            http.headers["Authorization"] = f"Bearer {r.json()['token']}"
            chat_id = (await http.get(f"{API}/chats")).json()["chats"][0]["id"]  # the self chat
            for run in range(1, args.runs + 1):
                seconds.append(await send_once(http, chat_id, note))
                label = "cold" if run == 1 else "warm"
                print(f"  run {run} ({label}): {seconds[-1]:.2f} s", flush=True)
        errors = server.errors()
        if errors:
            print(f"  ! server log errors: {errors}")
    finally:
        await server.stop()
    warm = seconds[1:] or seconds
    print(f"30 s voice note, send to transcript: cold {seconds[0]:.2f} s, "
          f"warm median {statistics.median(warm):.2f} s")  # fmt: skip
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--whisper", type=Path, help="a faster-whisper model dir")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
