#!/usr/bin/env python3
"""Matrix Synapse on voxbox's throughput pattern: the side-by-side baseline of issue 7.

Side by side with voxbox in one run (a Synapse run before each voxbox throughput run, so both
see the same machine; the JSON gets ``results.throughput.synapse`` and the ratios voxbox/Synapse
in ``results.throughput.vs_synapse``):

    .venv/bin/python benchmarks/messaging.py --scenario throughput --synapse --runs 3 \\
        --json bench.json

Synapse alone (``--messages 500`` for a quick check):

    .venv/bin/python benchmarks/synapse.py --runs 3 --json synapse.json

The pattern is voxbox's "throughput" scenario: 16 senders, each in a direct (2-person) room
with R, send 5,000 texts in total (the same ~45-char text) as fast as they can with
``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}``; R long-polls ``/sync``
(``since`` token, 30 s timeout) and records when each text arrives. accepted/s = texts /
(first send .. last 200), delivered/s = texts R got / (first send .. last arrival); POST
p50/p99 are the round trips of the sends. A send that fails with a 5xx, 429 or transport error
is retried with the same txnId (Synapse deduplicates), like voxbox's POSTs. Each sender warms
up with a few texts first, as in voxbox's scenario.

How Synapse runs: ``matrix-synapse`` from PyPI (``SYNAPSE_SPEC``, pinned so runs compare) in
its own venv, ``~/.cache/voxbox-bench/synapse-venv`` (``--synapse-venv``), made with
``python3.11 -m venv`` and pip on first use; one process, ``synapse.app.homeserver``, SQLite,
a client listener on a free loopback port, in a fresh temp dir per run. Measuring starts once
the fresh database's background updates are done. What differs from a generated config, and
why (see ``homeserver_config``):

- every rate limit (rc_message, rc_registration, rc_login, rc_joins, rc_invites,
  rc_room_creation, ...) is lifted, so this measures throughput, not the limiter; voxbox has no
  send limit, and runs with its login limit lifted;
- open registration without verification (m.login.dummy), to make the users; bcrypt at 4
  rounds (set-up only; voxbox's argon2 is at its cheapest cost here too);
- presence is off: voxbox has no online/offline presence, and Synapse's would add work to every
  send and sync (typing notices are on in both and unused here);
- no federation: no federation listener, no key servers, and no federation sender
  (``federation_sender_instances: []``), which otherwise works out the destinations of every
  event; voxbox has no federation;
- no access log (voxbox runs uvicorn with ``access_log=False``); other logging at --log-level;
- SQLite ``synchronous=NORMAL`` (``--synapse-synchronous normal``, the default), as voxbox's:
  durable against a process crash, no fsync per commit. Synapse itself keeps SQLite's default,
  FULL, which costs it about 12 fdatasyncs per text; ``--synapse-synchronous full`` runs it so
  (it was 2.3x slower on a busy machine, where an fsync took ~4 ms). The one PRAGMA is added
  by a small launcher (``LAUNCHER``) around the stock homeserver.

Worth knowing when reading the ratio: Synapse calls SQLite "not for production" and uses one
connection; rooms are unencrypted (``trusted_private_chat``, as voxbox's texts are plain on the
server); R sends nothing back (Matrix has no delivery receipts; voxbox's R acks every message
over its WebSocket); sync uses a filter with a timeline limit above the message count and
lazy-loaded members, as Element does, so no gap is skipped (a ``limited`` timeline would be
counted in ``limited_syncs``).

Every wait is bounded (request timeouts, the phase and drain limits, a deadline per run), so a
run always ends; a run cut short reports what it got and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from messaging import (
    MAX_RECONNECTS,
    PASSWORD,
    POST_ATTEMPTS,
    SETUP_ATTEMPTS,
    TEXT,
    PostStats,
    RunContext,
    Server,
    ServerConfig,
    http_client,
    machine_info,
    measured,
    median_of,
    ms,
    percentile,
    print_table,
)

SYNAPSE_SPEC = "matrix-synapse==1.163.2"
SYNAPSE_VENV = Path.home() / ".cache/voxbox-bench/synapse-venv"
SERVER_NAME = "bench.local"
CS = "/_matrix/client/v3"
SYNC_TIMEOUT_MS = 30_000
START_TIMEOUT = 120.0  # a fresh SQLite schema takes Synapse ~10 s on this machine
INSTALL_TIMEOUT = 900.0
TARGET_RATIO = 10.0  # issue 7: voxbox >= 10x Synapse on this pattern
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
# The stock homeserver, with one PRAGMA after Synapse's own (foreign_keys, journal_mode=WAL) on
# each SQLite connection it opens: used for --synapse-synchronous other than "full".
LAUNCHER = """\
import runpy, sys
from synapse.storage.engines.sqlite import Sqlite3Engine
stock = Sqlite3Engine.on_new_connection
def on_new_connection(self, db_conn):
    stock(self, db_conn)
    db_conn.execute("PRAGMA synchronous = {mode};")
    db_conn.commit()
Sqlite3Engine.on_new_connection = on_new_connection
sys.argv[0] = "synapse.app.homeserver"
runpy.run_module("synapse.app.homeserver", run_name="__main__", alter_sys=True)
"""


# --------------------------------------------------------------------------------------------
# installing


@dataclass(frozen=True)
class SynapseInstall:
    python: Path
    version: str


def ensure_synapse(venv: Path, spec: str, base_python: str = "python3.11") -> SynapseInstall:
    """Synapse's own venv, made (or brought to ``spec``) on first use; blocking, a few minutes
    the first time."""
    python = venv / "bin/python"
    version = _installed_version(python)
    wanted = spec.partition("==")[2]
    if version is None or (wanted and version != wanted):
        print(f"installing {spec} into {venv} (first use: a few minutes)", flush=True)
        if not python.exists():
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", spec],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        version = _installed_version(python)
        if version is None:
            raise RuntimeError(f"{spec} did not install into {venv}")
    return SynapseInstall(python, version)


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('matrix-synapse'))"
    try:
        done = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# --------------------------------------------------------------------------------------------
# the server


def homeserver_config(data: Path, port: int, log_config: Path) -> dict[str, Any]:
    """Synapse's config for one run (JSON is YAML). The module docstring says what differs
    from a generated config and why."""
    return {
        "server_name": SERVER_NAME,
        "pid_file": str(data / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
        "log_config": str(log_config),
        "media_store_path": str(data / "media_store"),
        "signing_key_path": str(data / "signing.key"),
        "registration_shared_secret": secrets.token_urlsafe(32),
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "bcrypt_rounds": 4,  # registering the users is set-up; voxbox's argon2 is cheap too
        "presence": {"enabled": False},
        "federation_sender_instances": [],
        "background_updates": {"sleep_enabled": False, "background_update_duration_ms": 500},
        "rc_message": UNLIMITED,
        "rc_registration": UNLIMITED,
        "rc_registration_token_validity": UNLIMITED,
        "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
        "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
        "rc_joins_per_room": UNLIMITED,
        "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
        "rc_room_creation": UNLIMITED,
        "rc_3pid_validation": UNLIMITED,
        "rc_admin_redaction": UNLIMITED,
        "rc_key_requests": UNLIMITED,
        "rc_presence": {"per_user": UNLIMITED},
        "rc_delayed_event_mgmt": UNLIMITED,
        "rc_user_directory": UNLIMITED,
        "rc_profile": UNLIMITED,
    }


def log_config(log_file: Path, level: str) -> dict[str, Any]:
    """Python logging to one file, voxbox's format; no access log (voxbox has none)."""
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
            }
        },
        "loggers": {"synapse.access.http": {"level": "WARNING"}},
        "root": {"level": level.upper(), "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _pending_background_updates(db: Path) -> int:
    """How many background updates Synapse has still to run (read-only, beside the server)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        (count,) = conn.execute("SELECT count(*) FROM background_updates").fetchone()
    finally:
        conn.close()
    return int(count)


class SynapseServer(Server):
    """``synapse.app.homeserver`` in a subprocess with its own temp dir and SQLite database;
    the same life cycle (log, errors, stop) as voxbox's ``Server``."""

    def __init__(
        self,
        install: SynapseInstall,
        log_level: str,
        label: str,
        keep: Path | None,
        synchronous: str = "full",
    ) -> None:
        config = ServerConfig(
            backend="synapse", pg_admin_url="", redis_url=None, log_level=log_level, voxbox="",
            keep_logs=keep,
        )  # fmt: skip
        super().__init__(config, label)
        self.install = install
        self.synchronous = synchronous
        self.ws_url = ""

    async def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"voxbox-bench-{self.label}-"))
        data = self.tmp / "data"
        data.mkdir()
        config_path, logging_path = self.tmp / "homeserver.yaml", self.tmp / "log.yaml"
        logging_path.write_text(
            json.dumps(log_config(self.tmp / "server.log", self.config.log_level))
        )
        config_path.write_text(json.dumps(homeserver_config(data, self.port, logging_path)))
        # Run from the temp dir, without PYTHONPATH: this file's directory holds a synapse.py.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VOXBOX_", "SYNAPSE_")) and k != "PYTHONPATH"
        }
        python, config_args = str(self.install.python), ("-c", str(config_path))
        keys = await asyncio.create_subprocess_exec(
            *(python, "-m", "synapse.app.homeserver", *config_args, "--generate-keys"),
            cwd=self.tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(keys.communicate(), 60)
        if keys.returncode != 0:
            raise RuntimeError(f"synapse --generate-keys: {out.decode(errors='replace')[-2000:]}")
        log = await asyncio.to_thread((self.tmp / "stdout.log").open, "wb")
        try:
            if self.synchronous == "full":  # SQLite's default, which Synapse keeps
                command = [python, "-m", "synapse.app.homeserver", *config_args]
            else:
                launcher = LAUNCHER.replace("{mode}", self.synchronous.upper())
                command = [python, "-c", launcher, *config_args]
            self.proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    code = self.proc.returncode
                    raise RuntimeError(f"synapse exited ({code}):\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(
                    f"synapse not healthy after {START_TIMEOUT:.0f}s:\n{self.log_tail()}"
                )
        # A fresh database starts with ~60 background updates (indexes, clean-ups): let them
        # finish, so they do not run during the measured phase.
        db = data / "homeserver.db"
        while await asyncio.to_thread(_pending_background_updates, db):
            if time.monotonic() > deadline:
                raise RuntimeError(f"synapse background updates still running:\n{self.log_tail()}")
            await asyncio.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        tail = super().log_tail(lines)
        if self.tmp is not None:  # start-up failures go to stdout, before logging is set up
            with contextlib.suppress(OSError):
                out = (self.tmp / "stdout.log").read_text(errors="replace").splitlines()
                tail = "\n".join([*out[-lines:], tail]).strip()
        return tail


# --------------------------------------------------------------------------------------------
# clients


@dataclass
class MatrixUser:
    user_id: str
    token: str
    http: httpx.AsyncClient


async def register_matrix_users(
    base: str, prefix: str, count: int, connections: int = 1, concurrency: int = 4
) -> list[MatrixUser]:
    """Open registration with m.login.dummy (bcrypt makes this ~0.25 s of server CPU each)."""
    gate = asyncio.Semaphore(concurrency)
    async with http_client(base, None, concurrency) as anon:

        async def one(i: int) -> MatrixUser:
            body: dict[str, Any] = {
                "username": f"{prefix}{i:04d}",
                "password": PASSWORD,
                "auth": {"type": "m.login.dummy"},
                "initial_device_display_name": "benchmark",
            }
            async with gate:
                r = await anon.post(f"{CS}/register", content=json.dumps(body).encode())
                if r.status_code == 401 and "session" in r.json():  # the first UIA round
                    body["auth"]["session"] = r.json()["session"]
                    r = await anon.post(f"{CS}/register", content=json.dumps(body).encode())
            if r.status_code != 200:
                raise RuntimeError(f"register {body['username']}: {r.status_code} {r.text[:200]}")
            data = r.json()
            token = data["access_token"]
            return MatrixUser(data["user_id"], token, http_client(base, token, connections))

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def close_matrix_users(users: Iterable[MatrixUser]) -> None:
    await asyncio.gather(*(u.http.aclose() for u in users), return_exceptions=True)


async def _setup_post(user: MatrixUser, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A set-up request, retried on a 5xx like a client would; the JSON answer."""
    for _ in range(SETUP_ATTEMPTS):
        r = await user.http.post(path, content=json.dumps(body).encode())
        if r.status_code == 200:
            answer: dict[str, Any] = r.json()
            return answer
        if r.status_code < 500:
            break
        await asyncio.sleep(0.1)
    raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:200]}")


async def direct_room(user: MatrixUser, other: MatrixUser) -> str:
    """A 2-person room as Element makes a DM (``trusted_private_chat``, ``is_direct``, invite),
    joined by the other; its room id."""
    created = await _setup_post(
        user,
        f"{CS}/createRoom",
        {"preset": "trusted_private_chat", "is_direct": True, "invite": [other.user_id]},
    )
    room_id: str = created["room_id"]
    await _setup_post(other, f"{CS}/join/{quote(room_id, safe='')}", {})
    return room_id


async def send_text(user: MatrixUser, room_id: str, client_id: str, stats: PostStats) -> bool:
    """Send a text like a client: the txnId is the client_id, so a retry (after a 5xx, 429 or
    transport error, up to POST_ATTEMPTS) is deduplicated. True when accepted."""
    path = f"{CS}/rooms/{quote(room_id, safe='')}/send/m.room.message/{client_id}"
    body = json.dumps({"msgtype": "m.text", "body": TEXT + client_id}).encode()
    for attempt in range(POST_ATTEMPTS):
        try:
            r = await user.http.put(path, content=body)
            status = r.status_code
        except httpx.TransportError:
            status = 0
        if status == 200:
            return True
        stats.failed_attempts[status] = stats.failed_attempts.get(status, 0) + 1
        if status not in (0, 429) and status < 500:
            break
        if attempt + 1 < POST_ATTEMPTS:
            await asyncio.sleep(0.05)
    stats.lost += 1
    return False


class SyncReceiver:
    """A user's ``/sync`` long-poll loop, like a Matrix client: an initial sync for the token,
    then ``since`` + ``timeout`` polls, each answered as soon as something new is there.

    Records the arrival of every text by client_id (the text after TEXT) at the time its sync
    answer was read; ``done`` is set when every expected client_id has arrived. A failed poll
    is retried (counted as a reconnect), up to MAX_RECONNECTS.
    """

    def __init__(self, user: MatrixUser, timeline_limit: int) -> None:
        self.user = user
        self.filter = json.dumps(
            {"room": {"timeline": {"limit": timeline_limit}, "state": {"lazy_load_members": True}}}
        )
        self.since: str | None = None
        self.arrivals: dict[str, float] = {}
        self.expected: set[str] = set()
        self.got_expected = 0
        self.duplicates = 0
        self.reconnects = 0
        self.limited = 0
        self.syncs = 0
        self.errors: list[str] = []
        self.done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The long-poll answers after up to SYNC_TIMEOUT_MS: wait longer than that.
        user.http.timeout = httpx.Timeout(SYNC_TIMEOUT_MS / 1000 + 60)

    def expect(self, client_ids: Iterable[str]) -> None:
        self.arrivals.clear()
        self.expected = set(client_ids)
        self.got_expected = 0
        self.done.clear()
        if not self.expected:
            self.done.set()

    def narrow(self, client_ids: Iterable[str]) -> None:
        """Expect only these of the expected ids (the phase stopped sending early)."""
        self.expected &= set(client_ids)
        self.got_expected = sum(1 for c in self.arrivals if c in self.expected)
        if self.got_expected >= len(self.expected):
            self.done.set()

    async def open(self) -> None:
        """The initial sync: the ``since`` token to poll from."""
        await self._poll(timeout_ms=0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sync-{self.user.user_id}")

    async def _poll(self, timeout_ms: int) -> None:
        params = {"timeout": str(timeout_ms), "filter": self.filter}
        if self.since is not None:
            params["since"] = self.since
        r = await self.user.http.get(f"{CS}/sync", params=params)
        now = time.perf_counter()
        if r.status_code != 200:
            raise RuntimeError(f"sync: {r.status_code} {r.text[:200]}")
        answer = r.json()
        self.syncs += 1
        incremental = self.since is not None
        for room in answer.get("rooms", {}).get("join", {}).values():
            timeline = room.get("timeline", {})
            if incremental and timeline.get("limited"):
                self.limited += 1  # a gap a client would backfill: texts in it are missed
            for event in timeline.get("events", []):
                if event.get("type") == "m.room.message":
                    text = event.get("content", {}).get("body", "")
                    if text.startswith(TEXT):
                        self._arrived(text[len(TEXT) :], now)
        self.since = answer["next_batch"]

    def _arrived(self, client_id: str, at: float) -> None:
        if client_id in self.arrivals:
            self.duplicates += 1
            return
        self.arrivals[client_id] = at
        if client_id in self.expected:
            self.got_expected += 1
            if self.got_expected == len(self.expected):
                self.done.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._poll(SYNC_TIMEOUT_MS)
                continue
            except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
                failure = repr(exc)
            if self.reconnects >= MAX_RECONNECTS:
                self.errors.append(f"too many failed syncs, last: {failure}")
                return
            self.reconnects += 1
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def wait_done(rx: SyncReceiver, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            await rx.done.wait()
    except TimeoutError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# the scenario


async def warm_up(sender: MatrixUser, room_id: str, rx: SyncReceiver, count: int) -> None:
    """A few texts before measuring (connections, caches), as voxbox's warm-up."""
    ids = [f"warm-{sender.user_id[1:].split(':')[0]}-{i}" for i in range(count)]
    rx.expect(ids)
    stats = PostStats()
    accepted = [cid for cid in ids if await send_text(sender, room_id, cid, stats)]
    if not accepted:
        raise RuntimeError(f"warm-up sends failed: {stats.failed_attempts}")
    rx.narrow(accepted)
    if not await wait_done(rx, 60):
        raise RuntimeError("warm-up texts did not arrive")


async def scenario_synapse_throughput(ctx: RunContext) -> dict[str, Any]:
    """voxbox's throughput scenario against Synapse; the same result keys."""
    args, server = ctx.args, ctx.server
    users = await register_matrix_users(server.base, "tp", args.senders + 1)
    receiver_user, senders = users[0], users[1:]
    total = args.throughput_messages
    rx = SyncReceiver(receiver_user, timeline_limit=total + args.warmup + 100)
    try:
        rooms = [await direct_room(s, receiver_user) for s in senders]
        await rx.open()
        rx.start()
        warm = max(1, args.warmup // args.senders)
        for s, room_id in zip(senders, rooms, strict=True):
            await warm_up(s, room_id, rx, warm)
        ids = [f"tp-{i}" for i in range(total)]
        rx.expect(ids)
        next_index = itertools.count()
        rtts: list[float] = []
        stats = PostStats()
        first_send = math.inf
        last_accept = 0.0
        sent: list[str] = []
        deadline = time.perf_counter() + args.phase_timeout

        async def sender(user: MatrixUser, room_id: str) -> None:
            nonlocal first_send, last_accept
            while (i := next(next_index)) < total:
                t0 = time.perf_counter()
                if t0 > deadline:
                    break
                first_send = min(first_send, t0)
                sent.append(ids[i])
                accepted = await send_text(user, room_id, ids[i], stats)
                t1 = time.perf_counter()
                rtts.append(t1 - t0)
                if accepted:
                    last_accept = max(last_accept, t1)

        async with measured(ctx, "throughput") as phase:
            await asyncio.gather(*(sender(s, r) for s, r in zip(senders, rooms, strict=True)))
            rx.narrow(sent)
            complete = await wait_done(rx, args.drain_timeout)
        accepted = len(sent) - stats.lost
        last_arrival = max(rx.arrivals.values(), default=math.nan)
        return {
            "messages": total,
            "sent": len(sent),
            "senders": args.senders,
            "accepted": accepted,
            "received": rx.got_expected,
            "complete": complete,
            **stats.as_dict(),
            "accepted_per_s": round(accepted / (last_accept - first_send), 1),
            "all_received_s": round(last_arrival - first_send, 3),
            "delivered_per_s": round(rx.got_expected / (last_arrival - first_send), 1),
            "post_p50_ms": ms(percentile(rtts, 50)),
            "post_p99_ms": ms(percentile(rtts, 99)),
            **phase.as_dict(),
            "reconnects": rx.reconnects,
            "duplicates": rx.duplicates,
            "limited_syncs": rx.limited,
            "syncs": rx.syncs,
            "client_errors": rx.errors[:5],
            "server_errors": server.errors(),
        }
    finally:
        await rx.close()
        await close_matrix_users(users)


async def run_synapse(
    run: int, args: argparse.Namespace, install: SynapseInstall
) -> dict[str, Any]:
    """One run of the throughput pattern against a fresh Synapse; ``{"error": ...}`` if it
    failed. ``args`` has messaging.py's names (throughput_messages, senders, warmup, timeout,
    phase_timeout, drain_timeout, log_level, keep_logs, profile, profile_rate, profile_wall)."""
    keep = Path(args.keep_logs) if args.keep_logs else None
    label = f"synapse-throughput-{run}"
    server = SynapseServer(install, args.log_level, label, keep, args.synapse_synchronous)
    started = time.monotonic()
    try:
        async with asyncio.timeout(args.timeout):
            await server.start()
            ctx = RunContext(server, args, run, Path(args.profile) if args.profile else None)
            result = await scenario_synapse_throughput(ctx)
    except TimeoutError:
        result = {"error": f"timed out after {args.timeout}s", "log": server.log_tail(10)}
    except Exception as exc:
        result = {"error": repr(exc), "log": server.log_tail(60)}
    finally:
        await server.stop()
    result["run_wall_s"] = round(time.monotonic() - started, 1)
    return result


def report_run(run: int, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"\nsynapse throughput run {run}: ERROR {result['error']}")
        print(result.get("log", ""))
        return
    print_table(f"synapse throughput run {run}", "throughput", [(str(run), result)])
    problems = {
        k: result[k]
        for k in ("client_errors", "server_errors", "post_errors", "post_lost", "limited_syncs")
        if result.get(k)
    }
    if not result.get("complete", True) or problems:
        print(f"  ! incomplete or errors: {problems}")


def summarize(runs: list[dict[str, Any]], install: SynapseInstall) -> dict[str, Any]:
    """The report entry of Synapse's runs (with the median), printed as a table."""
    entry: dict[str, Any] = {"version": install.version, "runs": runs}
    ok_runs = [r for r in runs if "error" not in r]
    if ok_runs:
        entry["median"] = med = median_of(ok_runs)
        rows = [(str(i + 1), r) for i, r in enumerate(runs) if "error" not in r]
        print_table(
            f"== synapse {install.version} throughput: {len(ok_runs)} runs, median last",
            "throughput",
            [*rows, ("median", med)],
        )
    return entry


def compare(voxbox: dict[str, Any], synapse: dict[str, Any]) -> dict[str, Any]:
    """voxbox/Synapse for the medians of both, and the verdict against issue 7's 10x."""
    ratios: dict[str, Any] = {}
    for key in ("accepted_per_s", "delivered_per_s"):
        mine, theirs = voxbox.get(key, math.nan), synapse.get(key, math.nan)
        ratios[key] = round(mine / theirs, 2) if theirs else math.nan
    worst = min(ratios.values())
    met = not math.isnan(worst) and worst >= TARGET_RATIO
    ratios["verdict"] = (
        f"voxbox/Synapse accepted {ratios['accepted_per_s']}x, delivered "
        f"{ratios['delivered_per_s']}x vs target >= {TARGET_RATIO:g}x: "
        f"{'met' if met else 'MISSED'}"
    )
    return ratios


# --------------------------------------------------------------------------------------------
# command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Where Synapse comes from; shared by this CLI and messaging.py's ``--synapse``."""
    p.add_argument(
        "--synapse-venv",
        type=Path,
        default=Path(os.environ.get("VOXBOX_BENCH_SYNAPSE_VENV", SYNAPSE_VENV)),
        help="Synapse's own venv, made on first use (default: %(default)s)",
    )
    p.add_argument(
        "--synapse-spec", default=SYNAPSE_SPEC, help="what pip installs (default: %(default)s)"
    )
    p.add_argument(
        "--synapse-synchronous",
        choices=["full", "normal"],
        default="normal",
        help="SQLite synchronous for Synapse: normal (default) is voxbox's (durable against a "
        "process crash, no fsync per commit); full is stock Synapse (an fsync per commit)",
    )


async def prepare(args: argparse.Namespace) -> SynapseInstall:
    install = await asyncio.to_thread(ensure_synapse, args.synapse_venv, args.synapse_spec)
    print(f"synapse {install.version} from {install.python}")
    return install


async def main_async(args: argparse.Namespace) -> int:
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['mem_gib']} GiB")
    install = await prepare(args)
    runs = []
    for run in range(1, args.runs + 1):
        result = await run_synapse(run, args, install)
        report_run(run, result)
        runs.append(result)
    entry = summarize(runs, install)
    if args.json:
        report = {
            "machine": info,
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "results": {"throughput": {"synapse": entry}},
        }
        text = json.dumps(report, indent=2, default=str) + "\n"
        await asyncio.to_thread(Path(args.json).write_text, text)
        print(f"\nwrote {args.json}")
    return 0 if all("error" not in r for r in runs) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="write all results and the median here")
    p.add_argument("--throughput-messages", "--messages", type=int, default=5000)
    p.add_argument("--senders", type=int, default=16)
    p.add_argument("--warmup", type=int, default=50, help="texts before measuring")
    p.add_argument("--log-level", default="INFO", help="Synapse's log level")
    p.add_argument("--keep-logs", metavar="DIR", help="copy each run's server log here")
    p.add_argument("--timeout", type=float, default=600, help="deadline per run, s")
    p.add_argument("--phase-timeout", type=float, default=120, help="stop sending after, s")
    p.add_argument("--drain-timeout", type=float, default=60, help="wait for the last texts, s")
    p.add_argument("--profile", metavar="DIR", help="py-spy Synapse in the measured phase")
    p.add_argument("--profile-rate", type=int, default=100)
    p.add_argument("--profile-wall", action="store_true", help="py-spy without --gil")
    add_arguments(p)
    args = p.parse_args(argv)
    if args.runs < 1 or args.senders < 1:
        p.error("--runs and --senders >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
