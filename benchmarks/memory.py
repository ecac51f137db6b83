#!/usr/bin/env python3
"""Memory benchmark (issue 9, item 12): the server's RSS before, during and after a load of
200 WebSockets and 2,000 group messages, and what holds memory afterwards.

Phases, against a fresh ``voxbox serve`` (SQLite by default):

1. idle: the server started, nothing done;
2. set up: 200 users registered, one group of all of them;
3. loaded: all 200 connected (acking, as clients do), 2,000 texts posted into the group (4 in
   flight) and every one delivered to every member (398,000 deliveries);
4. after: every socket closed, the server told so (``voxbox_websockets_open`` is 0);
5. phases 3 and 4 again (``--cycles``): memory that is bounded is reused, not grown.

RSS is read from ``/proc/PID/status`` (VmRSS; VmHWM is the peak). ``--trace`` runs the server
under ``tracemalloc`` (through a small wrapper this script writes) and prints the allocations
still live after the load that were not there after set-up, grouped by where they were made:
that is how to find what holds memory (with ``--cycles 2`` or more: what the later cycles
added to what the first left). Tracing slows the server several-fold; its RSS numbers
are not the ones to report.

    .venv/bin/python benchmarks/memory.py --runs 3 [--backend postgres] [--trace]

Results and findings: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from messaging import (
    METRICS_TOKEN,
    PostStats,
    Receiver,
    Server,
    ServerConfig,
    User,
    close_users,
    create_chat,
    http_client,
    machine_info,
    open_receivers,
    post_message,
    register_users,
    voxbox_source,
    wait_all,
)

WRAPPER = """#!{python}
# voxbox serve under tracemalloc; SIGUSR2 writes a snapshot to $VOXBOX_BENCH_SNAPSHOTS/N.
import gc, itertools, os, signal, sys, tracemalloc
tracemalloc.start(12)
_n = itertools.count()
def _dump(*_):
    path = os.path.join(os.environ["VOXBOX_BENCH_SNAPSHOTS"], str(next(_n)))
    if os.environ.get("VOXBOX_BENCH_GC"):
        print("gc collected", gc.collect(), flush=True)
    tracemalloc.take_snapshot().dump(path + ".part")
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR2, _dump)
from voxbox.cli.main import app
sys.argv = ["voxbox", *sys.argv[1:]]
app()
"""


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


async def sockets_open(server: Server) -> float:
    async with httpx.AsyncClient(base_url=server.base) as http:
        text = (
            await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        ).text
    for line in text.splitlines():
        if line.startswith("voxbox_websockets_open "):
            return float(line.split()[1])
    raise RuntimeError("no voxbox_websockets_open in /metrics")


async def snapshot(server: Server, where: Path) -> tracemalloc.Snapshot:
    """Ask the traced server for a snapshot, and load it."""
    before = set(os.listdir(where))
    os.kill(server.pid, signal.SIGUSR2)
    while True:  # the file appearing is the only signal there is
        done = [n for n in set(os.listdir(where)) - before if not n.endswith(".part")]
        if done:
            return tracemalloc.Snapshot.load(str(where / done[0]))
        await asyncio.sleep(0.2)


async def post_all(sender: User, chat_id: str, ids: list[str]) -> None:
    """Post a text for each id into the chat, four in flight."""
    stats = PostStats()
    next_index = itertools.count()

    async def worker() -> None:
        while (i := next(next_index)) < len(ids):
            await post_message(sender, chat_id, ids[i], stats)

    await asyncio.gather(*(worker() for _ in range(4)))


async def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    snapshots = Path(tempfile.mkdtemp(prefix="voxbox-mem-"))
    voxbox = str(Path(sys.executable).with_name("voxbox"))
    extra: dict[str, str] = dict(pair.split("=", 1) for pair in args.env)
    if args.trace:
        wrapper = snapshots / "voxbox-traced"
        wrapper.write_text(WRAPPER.format(python=sys.executable))
        wrapper.chmod(0o755)
        voxbox = str(wrapper)
        extra["VOXBOX_BENCH_SNAPSHOTS"] = str(snapshots)
        if args.gc:
            extra["VOXBOX_BENCH_GC"] = "1"
    config = ServerConfig(
        backend=args.backend,
        pg_admin_url=args.pg_admin_url,
        redis_url=args.redis_url if args.backend == "postgres" else None,
        log_level="WARNING",
        voxbox=voxbox,
        extra_env=extra,
    )
    server = Server(config, f"memory-{run}")
    await server.start()
    result: dict[str, Any] = {}
    receivers: list[Receiver] = []
    users: list[User] = []
    try:
        result["idle"] = rss_mb(server.pid)
        users = await register_users(server.base, "mem", args.members, connections=1)
        sender = users[0]
        await sender.http.aclose()
        sender.http = http_client(server.base, sender.token, 4)
        chat_id = await create_chat(
            sender, {"kind": "group", "title": "memory", "handles": [u.handle for u in users[1:]]}
        )
        result["set_up"] = rss_mb(server.pid)
        base = await snapshot(server, snapshots) if args.trace else None

        for cycle in range(args.cycles):
            receivers = await open_receivers(server.ws_url, users, ack=True, compression=True)
            ids = [f"mem-{cycle}-{i}" for i in range(args.messages)]
            for rx in receivers[1:]:
                rx.expect(ids)
            started = time.perf_counter()
            await post_all(sender, chat_id, ids)
            result[f"complete_{cycle}"] = await wait_all(receivers[1:], args.drain_timeout)
            result[f"load_s_{cycle}"] = round(time.perf_counter() - started, 1)
            result[f"loaded_{cycle}"] = rss_mb(server.pid)

            await asyncio.gather(*(r.close() for r in receivers))
            receivers = []
            deadline = time.monotonic() + 30
            # /metrics is the only word from the server that its sockets closed.
            while await sockets_open(server) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            result[f"after_{cycle}"] = rss_mb(server.pid)
            if args.trace and cycle == 0 and args.cycles > 1:
                base = await snapshot(server, snapshots)  # what the later cycles add
        if base is not None:
            after = await snapshot(server, snapshots)
            result["still_held"] = [
                {"kib": round(stat.size_diff / 1024), "count": stat.count_diff, "where": str(stat)}
                for stat in after.compare_to(base, "traceback")[: args.top]
            ]
            for stat in after.compare_to(base, "traceback")[: args.top]:
                print(f"\n{stat.size_diff / 1024:.0f} KiB in {stat.count_diff} blocks:")
                print("\n".join(stat.traceback.format(limit=8)))
    finally:
        await asyncio.gather(*(r.close() for r in receivers))
        await close_users(users)
        await server.stop()
    return result


async def main_async(args: argparse.Namespace) -> int:
    runs = []
    for run in range(args.runs):
        result = await one_run(args, run)
        runs.append(result)
        cycles = "; ".join(
            f"cycle {c + 1}: loaded {result[f'loaded_{c}']['VmRSS']}, after "
            f"{result[f'after_{c}']['VmRSS']} ({result[f'load_s_{c}']} s, all delivered: "
            f"{result[f'complete_{c}']})"
            for c in range(args.cycles)
        )
        print(
            f"run {run + 1}: RSS MB idle {result['idle']['VmRSS']}, set up "
            f"{result['set_up']['VmRSS']}; {cycles}"
        )
    phases = ["idle", "set_up"]
    phases += [f"{p}_{c}" for c in range(args.cycles) for p in ("loaded", "after")]
    summary = {phase: statistics.median(r[phase]["VmRSS"] for r in runs) for phase in phases}
    summary["peak"] = statistics.median(r[f"after_{args.cycles - 1}"]["VmHWM"] for r in runs)
    print("median RSS MB:", json.dumps(summary))
    if args.json:
        report = {
            "machine": machine_info(),
            "source": voxbox_source(),
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "runs": runs,
            "median_rss_mb": summary,
        }
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=2, help="connect, load, close; again")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--trace", action="store_true", help="find what holds memory")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--gc", action="store_true", help="with --trace: collect garbage before each snapshot"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)"
    )
    parser.add_argument("--json", help="write the results here")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
