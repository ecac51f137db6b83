#!/usr/bin/env python3
"""Search benchmark (issue 11): latency of ``GET /search`` over a large history, on SQLite.

A real ``voxbox serve`` (started as ``benchmarks/messaging.py`` does). Over the API: ``--users``
users (200), each in direct chats with ``--friends`` others (5 each way, so about 10 chats) and
in groups of 10. Then, written straight into the server's SQLite database (the server keeps
running; posting 100,000 messages through the API would only measure the write path):
``--messages`` messages (100,000) spread over those chats, of which ``--transcripts`` (10,000)
are voice notes with a ready transcript of 60 timed words. Texts are 4-30 words drawn from a
Zipf-distributed vocabulary of 20,000 words, so some words are in most messages and most are
rare. Every document goes through the same triggers and FTS5 index as real ones.

Queries, ``--queries`` of each kind (100), each by a random user, one at a time over keep-alive:
``common`` (one of the 10 most frequent words), ``mid`` (rank 100-1,000), ``rare`` (rank over
5,000), ``two`` (two mid words), ``prefix`` (the first 4 letters of a mid word). Reported: p50,
p95 and max per kind and over all, in ms, from the request to the last byte. Target: p95 <= 50 ms.

    .venv/bin/python benchmarks/search.py [--runs 3] [--messages 100000] [--transcripts 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from messaging import API, Server, ServerConfig, machine_info
from uploads import loadavg
from voxbox.ids import new_id

TARGET_P95_MS = 50.0
KINDS = ("common", "mid", "rare", "two", "prefix")


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """``size`` distinct made-up words of 1-4 syllables, in rank order."""
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["ing", "er", "ly"]
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))] = None
    return list(words)


class Corpus:
    def __init__(self, words: list[str], rng: random.Random) -> None:
        self.words = words
        self.rng = rng
        weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf, s = 1
        total = sum(weights)
        self.cumulative = list(_accumulate(w / total for w in weights))

    def text(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)


def _accumulate(values: Any) -> list[float]:
    out, running = [], 0.0
    for value in values:
        running += value
        out.append(running)
    return out


async def register(http: httpx.AsyncClient, handle: str) -> dict[str, Any]:
    r = await http.post(f"{API}/auth/register", json={"handle": handle, "password": "pw-" * 4})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def set_up_people(base: str, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Users and chats over the API; returns the users' tokens and the chat ids."""
    rng = random.Random(1)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        users = [await register(http, f"s{i:04d}") for i in range(args.users)]
        tokens = [u["token"] for u in users]
        handles = [u["user"]["handle"] for u in users]
        chats: list[str] = []
        for i, token in enumerate(tokens):
            auth = {"Authorization": f"Bearer {token}"}
            for k in range(1, args.friends + 1):
                other = handles[(i + k) % len(handles)]
                r = await http.post(
                    f"{API}/chats", json={"kind": "direct", "handle": other}, headers=auth
                )
                r.raise_for_status()
                chats.append(r.json()["id"])
            if i % 10 == 0:
                members = rng.sample(handles, 9)
                r = await http.post(
                    f"{API}/chats",
                    json={"kind": "group", "title": f"g{i}", "handles": members},
                    headers=auth,
                )
                r.raise_for_status()
                chats.append(r.json()["id"])
    return tokens, sorted(set(chats))


def fill(db: Path, chats: list[str], corpus: Corpus, args: argparse.Namespace) -> float:
    """Messages, voice notes and transcripts straight into the database; seconds taken."""
    started = time.perf_counter()
    rng = corpus.rng
    conn = sqlite3.connect(db, timeout=60)
    members: dict[str, list[str]] = {chat: [] for chat in chats}
    for chat, user in conn.execute("SELECT chat_id, user_id FROM members"):
        members.setdefault(chat, []).append(user)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    voice_at = set(rng.sample(range(args.messages), args.transcripts))
    messages, media, transcripts = [], [], []
    for n in range(args.messages):
        chat = rng.choice(chats)
        sender = rng.choice(members[chat])
        message_id = new_id()
        if n in voice_at:
            media_id = new_id()
            said = corpus.text(60)
            words = [
                {"w": w, "start_ms": 500 * i, "end_ms": 500 * i + 400} for i, w in enumerate(said)
            ]
            media.append(
                (media_id, sender, "voice", "ready", "note.webm", f"{n:064x}", 1, "audio/webm",
                 f"k{n}", 1, 30_000, now)
            )  # fmt: skip
            transcripts.append((media_id, "ready", " ".join(said), "en", json.dumps(words), now))
            messages.append((message_id, chat, sender, f"c{n}", "voice", None, media_id, now))
        else:
            text = " ".join(corpus.text(rng.randint(4, 30)))
            messages.append((message_id, chat, sender, f"c{n}", "text", text, None, now))
    with conn:
        conn.executemany(
            "INSERT INTO media (id, uploader_id, kind, state, filename, source_sha256,"
            " source_size, source_content_type, ogg_key, ogg_size, duration_ms, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            media,
        )
        conn.executemany(
            "INSERT INTO transcripts (media_id, state, text, language, words, updated_at)"
            " VALUES (?,?,?,?,?,?)",
            transcripts,
        )
        # The insert trigger indexes each text, and each voice note's ready transcript.
        conn.executemany(
            "INSERT INTO messages (id, chat_id, sender_id, client_id, kind, text, media_id,"
            " view_once, created_at) VALUES (?,?,?,?,?,?,?,0,?)",
            messages,
        )
    docs = conn.execute("SELECT count(*) FROM search_docs").fetchone()[0]
    conn.close()
    assert docs == args.messages, (docs, args.messages)
    return time.perf_counter() - started


def queries(corpus: Corpus, count: int, rng: random.Random) -> dict[str, list[str]]:
    words = corpus.words
    return {
        "common": [rng.choice(words[:10]) for _ in range(count)],
        "mid": [rng.choice(words[100:1000]) for _ in range(count)],
        "rare": [rng.choice(words[5000:]) for _ in range(count)],
        "two": [" ".join(rng.sample(words[100:1000], 2)) for _ in range(count)],
        "prefix": [rng.choice(words[100:1000])[:4] for _ in range(count)],
    }


async def measure(
    base: str, tokens: list[str], asked: dict[str, list[str]], rng: random.Random
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in asked}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for kind, qs in asked.items():
            for q in qs:
                auth = {"Authorization": f"Bearer {rng.choice(tokens)}"}
                started = time.perf_counter()
                r = await http.get(f"{API}/search", params={"q": q}, headers=auth)
                elapsed = (time.perf_counter() - started) * 1000
                r.raise_for_status()
                times[kind].append(elapsed)
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, load {loadavg()}", flush=True)
    config = ServerConfig.sqlite(VOXBOX_TRANSCRIBE__ENGINE="off")
    server = Server(config, "search")
    rng = random.Random(7)
    corpus = Corpus(vocabulary(20_000, rng), rng)
    try:
        await server.start()
        tokens, chats = await set_up_people(server.base, args)
        assert server.tmp is not None
        seconds = await asyncio.to_thread(
            fill, server.tmp / "data" / "voxbox.db", chats, corpus, args
        )
        print(
            f"{args.users} users, {len(chats)} chats, {args.messages} messages "
            f"({args.transcripts} transcribed) written and indexed in {seconds:.1f} s",
            flush=True,
        )
        runs: list[dict[str, list[float]]] = []
        for run in range(1, args.runs + 1):
            asked = queries(corpus, args.queries, random.Random(run))
            times = await measure(server.base, tokens, asked, random.Random(run))
            runs.append(times)
            every = [t for ts in times.values() for t in ts]
            line = ", ".join(f"{kind} p95 {p(ts, 0.95):.1f}" for kind, ts in times.items())
            print(f"  run {run}: all p50 {p(every, 0.5):.1f} p95 {p(every, 0.95):.1f} ms; {line}")
        errors = server.errors()
        if errors:
            print(f"  ! server log errors: {errors}")
    finally:
        await server.stop()
    print(f"median of {len(runs)} runs (ms):")
    for kind in (*KINDS, "all"):

        def pick(times: dict[str, list[float]], kind: str = kind) -> list[float]:
            return [t for ts in times.values() for t in ts] if kind == "all" else times[kind]

        p50 = statistics.median(p(pick(t), 0.5) for t in runs)
        p95 = statistics.median(p(pick(t), 0.95) for t in runs)
        top = statistics.median(max(pick(t)) for t in runs)
        print(f"  {kind:>7}: p50 {p50:6.1f}  p95 {p95:6.1f}  max {top:6.1f}")
    overall = statistics.median(p([x for ts in t.values() for x in ts], 0.95) for t in runs)
    verdict = "met" if overall <= TARGET_P95_MS else "MISSED"
    print(f"p95 over all queries {overall:.1f} ms (target <= {TARGET_P95_MS:g}: {verdict})")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--friends", type=int, default=5)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--transcripts", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
