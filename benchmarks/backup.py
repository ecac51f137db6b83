#!/usr/bin/env python3
"""Server backup benchmark (issue 8): ``voxbox admin backup`` of 2 GB of voice media, full and
incremental, side by side with ``tar -c | zstd | age -p`` of the same data dir in the same run.

Makes a data dir the way a server leaves it: a migrated SQLite database with one user and
``--blobs`` media rows, and their blobs in the local store (``--blob-mb`` each, random bytes:
as incompressible as Opus). Then, ``--runs`` times each, medians reported:

- full: ``voxbox admin backup --to EMPTY_DIR --recipient age1...`` (a CLI run, start-up included);
- incremental: the same again into the same dir (nothing new: only the database is sent);
- baseline: ``tar -c -C DATA . | zstd | age -p > FILE`` (age reads the passphrase from a
  terminal, which this gives it), the usual hand-made encrypted backup.

Targets: full <= 1.2x the baseline; incremental <= 5% of the full run.

    .venv/bin/python benchmarks/backup.py [--blobs 2000] [--blob-mb 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import pty
import re
import select
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from messaging import machine_info
from voxbox import age
from voxbox.db.engine import Database
from voxbox.ids import new_id
from voxbox.storage import blob_key

VOXBOX = [sys.executable, "-m", "voxbox"]


def make_data_dir(data: Path, blobs: int, blob_bytes: int) -> None:
    data.mkdir(parents=True)
    asyncio.run(_migrate(data))
    conn = sqlite3.connect(data / "voxbox.db")
    user = new_id()
    conn.execute(
        "INSERT INTO users (id, handle, display_name, password_hash, is_admin, created_at,"
        " last_seq, acked_seq) VALUES (?, 'bench', 'Bench', 'x', 0, '2026-12-01 00:00:00', 0, 0)",
        (user,),
    )
    for n in range(blobs):
        body = os.urandom(blob_bytes)
        sha = hashlib.sha256(body).hexdigest()
        key = blob_key(sha, ".ogg")
        path = data / "blobs" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        conn.execute(
            "INSERT INTO media (id, uploader_id, kind, state, filename, source_sha256, source_size,"
            " source_content_type, ogg_key, ogg_size, duration_ms, created_at)"
            " VALUES (?, ?, 'voice', 'ready', ?, ?, ?, 'audio/ogg', ?, ?, 60000,"
            " '2026-12-01 00:00:00')",
            (new_id(), user, f"note-{n}.ogg", sha, blob_bytes, key, blob_bytes),
        )
    conn.commit()
    conn.close()


async def _migrate(data: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{data / 'voxbox.db'}")
    await db.migrate()
    await db.dispose()


def voxbox_backup(data: Path, dest: Path, recipient: str) -> tuple[float, float]:
    """(wall time of the CLI run, time of the backup itself as it reports it: what the
    server's daily schedule spends, without the interpreter's start-up)."""
    env = {**os.environ, "VOXBOX_DATA_DIR": str(data)}
    started = time.perf_counter()
    done = subprocess.run(
        [*VOXBOX, "admin", "backup", "--to", str(dest), "--recipient", recipient],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"voxbox admin backup failed:\n{done.stderr}")
    found = re.search(r"in (\d+\.\d+) s\.", done.stdout)
    assert found is not None, done.stdout
    return elapsed, float(found[1])


def baseline(data: Path, out: Path, passphrase: str) -> tuple[float, float]:
    """``tar | zstd | age -p`` in a terminal of its own, typing the passphrase when asked: the
    time until the pipeline ends, and until its output is on disk (``sync FILE``: voxbox
    fsyncs every file it writes, so only the second is a like-for-like comparison)."""
    command = f"tar -c -C {data} . | zstd -q | age -p -o {out}"
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", command])
    seen = b""
    typed = 0
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        while seen.lower().count(b"passphrase") > typed:
            os.write(fd, passphrase.encode() + b"\n")
            typed += 1
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    ended = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"baseline failed: {seen.decode(errors='replace')}")
    subprocess.run(["sync", str(out)], check=True)
    return ended, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--blob-mb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    blob_bytes = int(args.blob_mb * 1024 * 1024)
    root = Path(tempfile.mkdtemp(prefix="voxbox-bench-backup-"))
    try:
        data = root / "data"
        started = time.perf_counter()
        make_data_dir(data, args.blobs, blob_bytes)
        total = args.blobs * blob_bytes
        print(f"{machine_info()}")
        print(
            f"data: {args.blobs} blobs x {args.blob_mb} MiB = {total / 1e9:.2f} GB "
            f"(made in {time.perf_counter() - started:.0f} s)"
        )
        recipient = str(age.X25519Identity.generate().recipient)
        subprocess.run(["sync"], check=True)  # the data dir's writes are not the runs' work
        full, incremental, base = [], [], []
        for run in range(args.runs):
            dest = root / f"dest-{run}"
            full.append(voxbox_backup(data, dest, recipient))
            incremental.append(voxbox_backup(data, dest, recipient))
            shutil.rmtree(dest)
            out = root / "baseline.tar.zst.age"
            base.append(baseline(data, out, "bench passphrase words"))
            out.unlink()
            print(
                f"run {run + 1}: full {full[-1][0]:.2f} s (backup {full[-1][1]:.2f} s), "
                f"incremental {incremental[-1][0]:.2f} s (backup {incremental[-1][1]:.2f} s), "
                f"tar|zstd|age -p {base[-1][0]:.2f} s (on disk {base[-1][1]:.2f} s)",
                flush=True,
            )
        f, fb = (statistics.median(x[k] for x in full) for k in (0, 1))
        i, ib = (statistics.median(x[k] for x in incremental) for k in (0, 1))
        b, bd = (statistics.median(x[k] for x in base) for k in (0, 1))
        print(
            f"median: full {f:.2f} s ({total / f / 1e6:.0f} MB/s; backup {fb:.2f} s), "
            f"incremental {i:.2f} s ({i / f:.1%} of full; backup {ib:.2f} s, {ib / fb:.1%}), "
            f"baseline {b:.2f} s, on disk {bd:.2f} s ({total / bd / 1e6:.0f} MB/s); "
            f"full / baseline on disk {f / bd:.2f}x (/ baseline {f / b:.2f}x)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
