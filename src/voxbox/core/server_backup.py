"""The server's backup: a consistent, encrypted snapshot of the database and the media blobs,
taken while the server runs, to a directory or an S3 bucket; and the restore that rebuilds a
server from it.

A destination holds::

    catalog.json                            the snapshots, oldest first (plain: names and counts)
    snapshots/<stamp>/manifest.json         the snapshot's database file and blob keys (plain)
    snapshots/<stamp>/database.age          SQLite's online backup, or pg_dump's custom format
    blobs/<blob key>.age                    each media blob, once for all snapshots

Everything but the two JSON files is an age file encrypted to the operator's X25519 public key
(``age1...``): the server needs only that key to back up, and only the holder of the secret key
(``voxbox admin backup-key`` writes one; ``age -d -i KEY`` opens any file) can restore. The JSON
files name blob keys, which are content hashes and already the blob files' names.

The snapshot is consistent: SQLite's online-backup API copies the database as of one moment;
on PostgreSQL one repeatable-read transaction exports its snapshot to ``pg_dump --snapshot`` and
lists the blob keys within that same snapshot. Blobs are immutable and content-addressed, so a
blob already at the destination is not sent again: a backup with nothing new sends only the
database. ``keep`` snapshots are kept; the blobs only older ones used are deleted with them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbox import age
from voxbox.config import Settings
from voxbox.ids import new_id
from voxbox.storage import BlobNotFound, BlobStore, LocalBlobStore, make_blob_store
from voxbox.timeutil import isoformat, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

FORMAT = "voxbox-server-backup"
VERSION = 1
CATALOG = "catalog.json"
BLOBS_AT_ONCE = 8

# Every column that holds a blob key.
_KEY_QUERIES = (
    "SELECT original_key FROM media WHERE original_key IS NOT NULL",
    "SELECT ogg_key FROM media WHERE ogg_key IS NOT NULL",
    "SELECT mp3_key FROM media WHERE mp3_key IS NOT NULL",
    "SELECT key FROM upload_parts",
    "SELECT blob_key FROM tasks WHERE blob_key IS NOT NULL",
)

Progress = Callable[[int, int], None]  # (blobs done, blobs in all)


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass
class Snapshot:
    name: str
    blobs: int = 0
    blobs_sent: int = 0
    bytes_sent: int = 0
    missing: list[str] = field(default_factory=list)  # deleted while the backup ran
    deleted_snapshots: list[str] = field(default_factory=list)
    seconds: float = 0.0


def destination(url: str) -> BlobStore:
    """The store at a destination: a directory path, ``file:///...`` or ``s3://bucket/prefix``."""
    if "://" not in url:
        path = Path(url).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        url = path.as_uri()
    return make_blob_store(url, Path("."))


async def back_up(
    settings: Settings,
    store: BlobStore,
    dest: BlobStore,
    recipient: age.X25519Recipient,
    *,
    keep: int,
    on_progress: Progress | None = None,
) -> Snapshot:
    """Back up the server of ``settings`` (its blobs in ``store``) to ``dest``. Needs no running
    server and none of its machinery: a CLI run starts in a fraction of a second."""
    started = time.perf_counter()
    snapshot = Snapshot(utcnow().strftime("%Y%m%dt%H%M%S%fz"))
    work = settings.data_dir / "tmp" / f"server-backup-{new_id().lower()}"
    await asyncio.to_thread(work.mkdir, parents=True)
    try:
        database = work / "database"
        if settings.is_sqlite:
            keys = await asyncio.to_thread(_sqlite_snapshot, settings, database)
        else:
            keys = await _postgres_snapshot(settings, database)
        prefix = f"snapshots/{snapshot.name}"
        await _put_encrypted(dest, f"{prefix}/database.age", database, recipient, work)
        snapshot.blobs = len(keys)
        pending = iter(sorted(keys))
        done = 0

        async def sender() -> None:  # several at once: one's fsync overlaps another's reads
            nonlocal done
            for key in pending:
                sent = await _send_blob(store, dest, key, recipient, work)
                if sent is None:
                    snapshot.missing.append(key)
                elif sent:
                    snapshot.blobs_sent += 1
                    snapshot.bytes_sent += sent
                done += 1
                if on_progress is not None:
                    on_progress(done, len(keys))

        await asyncio.gather(*(sender() for _ in range(BLOBS_AT_ONCE)))
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": isoformat(utcnow()),
            "database": "sqlite" if settings.is_sqlite else "postgresql",
            "blobs": sorted(set(keys) - set(snapshot.missing)),
        }
        await _put_json(dest, f"{prefix}/manifest.json", manifest, work)
        catalog = await read_catalog(dest)
        catalog.append({"name": snapshot.name, "created_at": manifest["created_at"]})
        snapshot.deleted_snapshots = await _retain(dest, catalog, keep, work)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    snapshot.seconds = time.perf_counter() - started
    return snapshot


def _sqlite_snapshot(settings: Settings, out: Path) -> set[str]:
    """The database as of one moment (the online-backup API), and the blob keys it names."""
    source = sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True)
    copy = sqlite3.connect(out)
    try:
        source.backup(copy)
        return {row[0] for query in _KEY_QUERIES for row in copy.execute(query)}
    finally:
        copy.close()
        source.close()


def _libpq_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _postgres_snapshot(settings: Settings, out: Path) -> set[str]:
    """pg_dump of one repeatable-read snapshot, and the blob keys as of that same snapshot.
    (SQLAlchemy is imported here: a backup of SQLite starts faster without it.)"""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(settings.effective_database_url, poolclass=NullPool)
    try:
        return await _dump_with_keys(settings, engine, out)
    finally:
        await engine.dispose()


async def _dump_with_keys(settings: Settings, engine: AsyncEngine, out: Path) -> set[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            snapshot_id = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            keys = {row[0] for query in _KEY_QUERIES for row in await conn.execute(text(query))}
            command = [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot_id}",
                f"--file={out}",
                f"--dbname={_libpq_url(settings)}",
            ]
            try:
                done = await asyncio.to_thread(subprocess.run, command, capture_output=True)
            except FileNotFoundError:
                raise BackupError(
                    "pg_dump is not installed (apt-get install postgresql-client)."
                ) from None
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
    return keys


def _encrypt_file(source: Path, out: Path, recipient: age.Recipient) -> int:
    with source.open("rb") as src, out.open("wb") as dst:
        age.encrypt_file(src, dst, recipient)
        return dst.tell()


async def _put_encrypted(
    dest: BlobStore, key: str, source: Path, recipient: age.Recipient, work: Path
) -> int:
    out = work / f"out-{new_id().lower()}"
    size = await asyncio.to_thread(_encrypt_file, source, out, recipient)
    await dest.put_file(key, out, move=True)
    return size


async def _send_blob(
    store: BlobStore, dest: BlobStore, key: str, recipient: age.Recipient, work: Path
) -> int | None:
    """Encrypt one blob to the destination unless it is there; bytes sent (0: it was there),
    None if the blob is gone (deleted since the snapshot).

    A local blob is read in place, encrypted in one worker-thread call; another store's is
    fetched to a scratch file first. Either way a blob costs a few thread hops, not one per
    64 KiB chunk."""
    target = f"blobs/{key}.age"
    if await dest.exists(target):
        return 0
    if isinstance(store, LocalBlobStore):
        try:
            return await _put_encrypted(dest, target, store.path_for(key), recipient, work)
        except FileNotFoundError:
            return None
    plain = work / f"plain-{new_id().lower()}"
    try:
        await store.fetch_to_file(key, plain)
    except BlobNotFound:
        return None
    try:
        return await _put_encrypted(dest, target, plain, recipient, work)
    finally:
        await asyncio.to_thread(plain.unlink, missing_ok=True)


async def _put_json(dest: BlobStore, key: str, value: Any, work: Path) -> None:
    out = work / f"json-{new_id().lower()}"
    await asyncio.to_thread(out.write_text, json.dumps(value, indent=1))
    await dest.put_file(key, out, move=True)


async def _get_json(dest: BlobStore, key: str) -> Any:
    async with await dest.open(key) as stream:
        return json.loads(await stream.read_all())


async def read_catalog(dest: BlobStore) -> list[dict[str, Any]]:
    """The destination's snapshots, oldest first (none yet: empty)."""
    try:
        catalog = await _get_json(dest, CATALOG)
    except BlobNotFound:
        return []
    return list(catalog["snapshots"])


async def _retain(
    dest: BlobStore, catalog: list[dict[str, Any]], keep: int, work: Path
) -> list[str]:
    """Keep the newest ``keep`` snapshots; delete the others and the blobs only they used.

    The catalog is written before anything is deleted, so an interruption leaves files no
    snapshot lists (harmless, but they take space) and never a listed snapshot with files
    missing."""
    old, kept = catalog[:-keep], catalog[-keep:]
    await _put_json(dest, CATALOG, {"format": FORMAT, "snapshots": kept}, work)
    if not old:
        return []
    needed: set[str] = set()
    for entry in kept:
        needed.update((await _get_json(dest, f"snapshots/{entry['name']}/manifest.json"))["blobs"])
    for entry in old:
        prefix = f"snapshots/{entry['name']}"
        try:
            manifest = await _get_json(dest, f"{prefix}/manifest.json")
        except BlobNotFound:
            manifest = {"blobs": []}
        for key in set(manifest["blobs"]) - needed:
            await dest.delete(f"blobs/{key}.age")
        await dest.delete(f"{prefix}/database.age")
        await dest.delete(f"{prefix}/manifest.json")
    return [entry["name"] for entry in old]


# Restoring


@dataclass
class Restored:
    snapshot: str
    database: str
    blobs: int


async def restore(
    settings: Settings,
    source: BlobStore,
    identity: age.X25519Identity,
    *,
    snapshot: str | None = None,
    on_progress: Progress | None = None,
) -> Restored:
    """Rebuild this server's database and blobs from a snapshot (the newest by default). The
    server must be stopped, and its database empty: this refuses to overwrite one."""
    catalog = await read_catalog(source)
    if not catalog:
        raise BackupError("No snapshot there: the destination has no catalog.json.")
    names = [entry["name"] for entry in catalog]
    name = snapshot or names[-1]
    if name not in names:
        raise BackupError(f"No snapshot {name!r}; there are: {', '.join(names)}.")
    prefix = f"snapshots/{name}"
    manifest = await _get_json(source, f"{prefix}/manifest.json")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError("This snapshot was made by another version of voxbox.")
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest["database"] != backend:
        raise BackupError(
            f"The snapshot is of a {manifest['database']} database; this server uses {backend}."
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    work = settings.data_dir / "tmp" / f"server-restore-{new_id().lower()}"
    work.mkdir(parents=True)
    store = make_blob_store(settings.storage_url, settings.data_dir)
    try:
        database = work / "database"
        await _fetch_decrypted(source, f"{prefix}/database.age", database, identity)
        if backend == "sqlite":
            await asyncio.to_thread(_restore_sqlite, settings, database)
        else:
            await _restore_postgres(settings, database)
        for done, key in enumerate(manifest["blobs"]):
            if not await store.exists(key):
                blob = work / "blob"
                await _fetch_decrypted(source, f"blobs/{key}.age", blob, identity)
                await store.put_file(key, blob, move=True)
            if on_progress is not None:
                on_progress(done + 1, len(manifest["blobs"]))
    finally:
        await store.close()
        await asyncio.to_thread(shutil.rmtree, work, True)
    return Restored(name, backend, len(manifest["blobs"]))


async def _fetch_decrypted(
    source: BlobStore, key: str, out: Path, identity: age.X25519Identity
) -> None:
    decryptor = age.Decryptor(identity)
    try:
        stream = await source.open(key)
    except BlobNotFound:
        raise BackupError(f"The snapshot is incomplete: {key} is missing.") from None
    try:
        with out.open("wb") as dst:
            async with stream:
                async for chunk in stream:
                    dst.write(decryptor.update(chunk))
            dst.write(decryptor.finish())
    except age.WrongKey:
        raise BackupError("This key does not open the backup (wrong --identity).") from None
    except age.AgeError as exc:
        raise BackupError(f"{key} is damaged: {exc}.") from None


def _restore_sqlite(settings: Settings, database: Path) -> None:
    target = settings.sqlite_path
    if target.exists() and _has_users(target):
        raise BackupError(f"{target} already holds a voxbox database; restore into an empty one.")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(database, target)


def _has_users(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT count(*) FROM users").fetchone()[0] > 0
        except sqlite3.OperationalError:  # no such table: a fresh file
            return False


async def _restore_postgres(settings: Settings, dump: Path) -> None:
    url = _libpq_url(settings)
    check = await asyncio.to_thread(
        subprocess.run,
        ["psql", "-tAc", _USERS_IF_ANY, url],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise BackupError(f"Cannot reach the database: {check.stderr.strip()}")
    if check.stdout.strip() not in ("", "0"):
        raise BackupError("The database already holds voxbox users; restore into an empty one.")
    # A server started once has made its (empty) tables: the dump's replace them.
    done = await asyncio.to_thread(
        subprocess.run,
        ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
         f"--dbname={url}", str(dump)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")


# The number of users, or nothing when there is no users table yet.
_USERS_IF_ANY = """
SELECT CASE WHEN to_regclass('public.users') IS NULL THEN '' ELSE
  (xpath('/row/n/text()', query_to_xml('SELECT count(*) AS n FROM users', false, true, '')))[1]
  ::text
END
"""
