#!/usr/bin/env python3
"""Summarize a py-spy raw profile (``py-spy record --format raw --threads``).

    .venv/bin/python benchmarks/profile_summary.py profiles/sqlite-fanout-run1.txt [--top 25]

Prints, as percentages of all (non-idle) samples: samples per thread, where the CPU is by
library (the innermost frame's package), the functions with the most self time, and the voxbox
functions with the most inclusive time (everything they call, SQLAlchemy included).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def _aiosqlite_wait_line() -> int | None:
    """The line where an aiosqlite worker thread waits for work (``tx.get()``)."""
    try:
        import aiosqlite.core

        lines, start = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
    except (ImportError, AttributeError, OSError, TypeError):
        return None
    return next((start + i for i, text in enumerate(lines) if "tx.get(" in text), None)


_AIOSQLITE_WAIT = _aiosqlite_wait_line()


def _executor_wait_line() -> int | None:
    """The line where a ThreadPoolExecutor worker waits for work (``work_queue.get``)."""
    import concurrent.futures.thread

    try:
        lines, start = inspect.getsourcelines(concurrent.futures.thread._worker)
    except (OSError, TypeError):
        return None
    return next((start + i for i, text in enumerate(lines) if "work_queue.get(" in text), None)


_EXECUTOR_WAIT = _executor_wait_line()


def is_idle(frames: Sequence[tuple[str, str, int | None]]) -> bool:
    """Samples py-spy counts as active that are threads waiting (its idle check misses these).

    - an aiosqlite worker thread waiting for its next statement (``tx.get()``);
    - an anyio worker thread waiting for work (``Condition.wait`` in ``queue.py``), or a
      ThreadPoolExecutor one (``work_queue.get``);
    - the event loop thread inside uvloop's run loop with no Python frame above it: with
      ``--gil`` such samples are ~1%, so this is the loop waiting in epoll, not working.
    """
    func, file, line = frames[-1]
    if func == "_connection_worker_thread" and file.startswith("aiosqlite/"):
        return line == _AIOSQLITE_WAIT
    if func == "Condition.wait" and any(f[1] == "queue.py" for f in frames):
        return True
    if func == "_worker" and file == "concurrent/futures/thread.py":
        return line == _EXECUTOR_WAIT
    return func == "Runner.run" and file.startswith("asyncio/")


@dataclass
class Profile:
    total: int = 0
    idle: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    ours_inclusive: Counter[str] = field(default_factory=Counter)
    ours_first: Counter[str] = field(default_factory=Counter)
    layers: Counter[str] = field(default_factory=Counter)


def split_frame(frame: str) -> tuple[str, str, int | None]:
    """(function, file, line) of a frame such as 'Session.flush (sqlalchemy/orm/x.py:12)'."""
    m = _FRAME.match(frame)
    if m is None:
        return frame, "", None
    line = m.group("line")
    return m.group("func"), m.group("file"), int(line) if line else None


def layer(file: str) -> str:
    """The package a file belongs to, as py-spy shortens paths (``pkg/mod.py``)."""
    if not file:
        return "other"
    top = file.split("/", 1)[0].removesuffix(".py")
    known = {
        "voxbox",
        "sqlalchemy",
        "aiosqlite",
        "sqlite3",
        "asyncpg",
        "uvicorn",
        "starlette",
        "fastapi",
        "pydantic",
        "pydantic_core",
        "websockets",
        "json",
        "logging",
        "prometheus_client",
        "asyncio",
        "anyio",
        "redis",
        "argon2",
        "threading",
        "concurrent",
        "queue",
        "typing",
        "h11",
        "httptools",
    }
    return top if top in known else "other"


def parse(lines: Iterable[str]) -> Profile:
    prof = Profile()
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        thread = "?"
        if frames and frames[0].startswith("thread ("):
            thread = frames[0].split(":", 1)[-1].strip() or frames[0]
            frames = frames[1:]
        # aiosqlite threads: "Thread-12 (_connection_worker_thread)" -> "Thread-N (...)"
        thread = re.sub(r"-\d+", "-N", thread)
        if not frames:
            continue
        parsed = [split_frame(f) for f in frames]
        if is_idle(parsed):
            prof.idle += count
            continue
        prof.total += count
        prof.threads[thread] += count
        leaf_func, leaf_file, _ = parsed[-1]
        prof.self_time[f"{leaf_func} ({leaf_file})"] += count
        prof.layers[layer(leaf_file)] += count
        seen: set[str] = set()
        first_ours = None
        for func, file, _ in parsed:
            key = f"{func} ({file})"
            if key in seen:
                continue
            seen.add(key)
            prof.inclusive[key] += count
            if file.startswith("voxbox/") and not file.startswith("voxbox/cli/"):
                prof.ours_inclusive[key] += count
                first_ours = key  # innermost voxbox frame wins (the loop keeps the last)
        prof.ours_first[first_ours or "(no voxbox frame)"] += count
    return prof


def table(title: str, counts: Counter[str], total: int, top: int) -> list[str]:
    out = [f"\n{title}", "   %  samples  what"]
    for key, n in counts.most_common(top):
        out.append(f"{100 * n / total:5.1f}  {n:7d}  {key}")
    return out


def summarize(prof: Profile, top: int, duration: float | None, rate: int) -> str:
    if prof.total == 0:
        return "no samples"
    lines = [f"busy samples: {prof.total} (+ {prof.idle} idle ones left out)"]
    if duration:
        lines.append(
            f"= {100 * prof.total / (duration * rate):.0f}% of one core over {duration:.1f}s "
            f"at {rate} Hz (all threads)"
        )
    lines += table("by thread", prof.threads, prof.total, top)
    lines += table("by library (innermost frame)", prof.layers, prof.total, top)
    lines += table("self time (innermost frame)", prof.self_time, prof.total, top)
    lines += table("voxbox functions, inclusive", prof.ours_inclusive, prof.total, top)
    lines += table(
        "innermost voxbox frame (who asked for the work)", prof.ours_first, prof.total, top
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, help="py-spy raw files (merged)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--duration", type=float, help="seconds recorded (for the busy %%)")
    p.add_argument("--rate", type=int, default=100, help="py-spy sampling rate")
    args = p.parse_args(argv)
    lines: list[str] = []
    for f in args.files:
        lines += f.read_text(errors="replace").splitlines()
    print(summarize(parse(lines), args.top, args.duration, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
