#!/usr/bin/env python3
"""Group benchmark (core-level): create a 200-member group, and list chats.

Calls voxbox's core functions in this process, no HTTP: a ``Backends`` on a fresh SQLite data
dir, or on a fresh PostgreSQL database (dropped at the end), with users registered through
``core.accounts.do_create_user`` (a fixed password hash: no argon2 work).

- create: ``core.chats.create_group`` of an owner and ``--members - 1`` others. Reported: the
  writer-hold time (from taking the write gate to the commit; on SQLite no other write can run
  meanwhile, on PostgreSQL it is the transaction's length), the call's wall time, and the
  number of statements sent to the database. Target: hold <= 50 ms for 200 members.
- list: ``core.chats.list_chats`` of the owner, who is then in ``--chats`` chats (the groups
  made above and more groups of the same size, each with one message; plus the self chat).
  Reported: wall time and the number of statements (fixed, whatever the number of chats).

Every figure is the median of ``--runs`` runs after one warm-up run.

    .venv/bin/python benchmarks/groups.py --backend both [--runs 7] [--members 200] \\
        [--chats 50] [--json groups.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event

from voxbox.config import load_settings
from voxbox.core import chats, messages
from voxbox.core.accounts import do_create_user
from voxbox.core.backends import Backends
from voxbox.db.models import User

PASSWORD_HASH = "benchmark-no-login"


class Probe:
    """Counts statements on the engine and times each hold of the write gate."""

    def __init__(self, b: Backends) -> None:
        self.statements = 0
        self.holds: list[float] = []
        engine = b.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._count)
        gate = b.db.write_gate

        @contextlib.asynccontextmanager
        async def timed_gate() -> AsyncIterator[None]:
            async with gate():
                started = time.perf_counter()
                try:
                    yield
                finally:
                    self.holds.append(time.perf_counter() - started)

        b.db.write_gate = timed_gate  # type: ignore[method-assign]

    def _count(self, *_: Any) -> None:
        self.statements += 1

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """Yields a dict filled at exit: wall_ms, hold_ms (summed), statements."""
        out: dict[str, float] = {}
        statements, holds = self.statements, len(self.holds)
        started = time.perf_counter()
        yield out
        out["wall_ms"] = (time.perf_counter() - started) * 1000
        out["hold_ms"] = sum(self.holds[holds:]) * 1000
        out["statements"] = self.statements - statements


@contextlib.asynccontextmanager
async def backends_on(backend: str, pg_admin_url: str) -> AsyncIterator[Backends]:
    with tempfile.TemporaryDirectory(prefix="voxbox-groups-") as tmp:
        database_url = None
        database = f"voxbox_bench_groups_{secrets.token_hex(4)}"
        if backend == "postgres":
            await _pg_admin(pg_admin_url, f'CREATE DATABASE "{database}"')
            host = pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0]
            database_url = f"postgresql+asyncpg://{host}/{database}"
        b = Backends.from_settings(
            load_settings(
                data_dir=Path(tmp), database_url=database_url, redis_url=None, storage_url=None
            )
        )
        try:
            await b.start()
            yield b
        finally:
            await b.close()
            if backend == "postgres":
                await _pg_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncio.wait_for(asyncpg.connect(url), 10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def register(b: Backends, n: int) -> list[User]:
    async with b.transaction() as session:
        return [
            await do_create_user(session, f"user{i:04d}", PASSWORD_HASH, f"User {i}", False)
            for i in range(n)
        ]


def summary(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    async with backends_on(backend, args.pg_admin_url) as b:
        probe = Probe(b)
        owner, *others = await register(b, args.members)
        handles = [u.handle for u in others]

        creates = []
        for i in range(args.runs + 1):
            with probe.measure() as m:
                await chats.create_group(b, owner, f"group {i}", handles)
            if i:  # the first is the warm-up
                creates.append(m)

        made = args.runs + 1
        for i in range(made, args.chats - 1):
            await chats.create_group(b, owner, f"group {i}", handles)
        listed = await chats.list_chats(b, owner)
        for n, chat in enumerate(listed):
            if chat.kind == "group":
                sender = others[n % len(others)]
                await messages.send_message(
                    b, sender, chat.id, client_id=f"bench-{n}", kind="text", text=f"hello {n}"
                )

        lists = []
        for i in range(args.runs + 1):
            with probe.measure() as m:
                count = len(await chats.list_chats(b, owner))
            if i:
                lists.append(m)
        return {
            "create_group": {"members": args.members, "median": summary(creates), "runs": creates},
            "list_chats": {"chats": count, "median": summary(lists), "runs": lists},
        }


async def amain(args: argparse.Namespace) -> int:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "cpus": os.cpu_count(),
        "results": {},
    }
    for backend in backends:
        result = await run_backend(backend, args)
        report["results"][backend] = result
        c, lst = result["create_group"]["median"], result["list_chats"]["median"]
        print(
            f"{backend}: create a {args.members}-member group: writer held {c['hold_ms']:.1f} ms, "
            f"wall {c['wall_ms']:.1f} ms, {c['statements']:.0f} statements | "
            f"list {result['list_chats']['chats']} chats: {lst['wall_ms']:.1f} ms, "
            f"{lst['statements']:.0f} statements (medians of {args.runs})"
        )
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--runs", type=int, default=7, help="measured runs (after one warm-up)")
    p.add_argument("--members", type=int, default=200, help="group size, owner included")
    p.add_argument("--chats", type=int, default=50, help="chats the owner lists")
    p.add_argument("--json", metavar="FILE", help="write all results here")
    p.add_argument(
        "--pg-admin-url",
        default=os.environ.get("VOXBOX_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL to create the fresh database in",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(amain(parse_args())))
