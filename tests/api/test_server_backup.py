"""The server's backup, taken while it runs, then restored into an empty server: the same users,
chats, messages and media bytes; incremental (media already there is not sent again); retention;
the files open with the standard age tool; and clients that resume across the restore are told
to reload."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import pytest

from support.api import User, ok
from support.factory import S3_BUCKET
from support.server import ServerProcess
from support.tus import send_voice_note


def run(srv: ServerProcess, *args: str) -> str:
    r = srv.run_cli(*args, timeout=120)
    assert r.returncode == 0, f"voxbox {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def destination(srv: ServerProcess, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A directory on SQLite; on the scaled-out backend, a prefix of the tests' S3 bucket."""
    if srv.settings.get("VOXBOX_STORAGE_URL"):
        s3 = request.getfixturevalue("moto_s3")
        return s3.storage_url(S3_BUCKET, f"backups-{secrets.token_hex(4)}")
    return str(tmp_path / "backups")


def latest_seq(user: User) -> int:
    return ok(user.http.get("/events", params={"after": 0, "timeout": 0}))["seq"]


def test_a_server_backup_rebuilds_an_empty_server(
    make_server, make_user, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    srv = make_server()
    alice = make_user(server=srv, display_name="Alice")
    bob = make_user(server=srv, display_name="Bob")
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "before the backup")
    note = send_voice_note(bob, chat_id, 1.0)
    original = alice.http.get(f"/media/{note['media']['id']}/content").content
    key = tmp_path / "key.txt"
    recipient = run(srv, "admin", "backup-key", "-o", str(key)).strip()
    assert recipient.startswith("age1") and oct(key.stat().st_mode)[-3:] == "600"
    dest = destination(srv, tmp_path, request)

    first = run(srv, "admin", "backup", "--to", dest, "--recipient", recipient, "--keep", "2")
    assert re.search(r": 1 media files, 1 new", first), first
    again = run(srv, "admin", "backup", "--to", dest, "--recipient", recipient, "--keep", "2")
    assert re.search(r": 1 media files, 0 new", again), again  # incremental: nothing resent
    third = run(srv, "admin", "backup", "--to", dest, "--recipient", recipient, "--keep", "2")
    assert "Deleted older snapshots" in third
    if not dest.startswith("s3://"):  # the files open with the standard tool
        [snapshot] = re.findall(r"Snapshot (\S+):", third)
        opened = subprocess.run(
            ["age", "-d", "-i", str(key), f"{dest}/snapshots/{snapshot}/database.age"],
            capture_output=True,
            check=True,
        ).stdout
        assert opened.startswith(b"SQLite format 3")
        assert len(list(Path(dest, "snapshots").glob("*/manifest.json"))) == 2

    alice.send(chat_id, "after the backup")
    seen = latest_seq(alice)

    fresh = make_server()
    fresh.stop()
    restored = run(fresh, "admin", "restore", "--from", dest, "--identity", str(key))
    assert "Restored snapshot" in restored and "1 media files" in restored
    fresh.start()

    login = fresh_login(fresh, alice)
    back = ok(login.get("/events", params={"after": seen, "timeout": 0}))
    assert back.get("reset") is True and back["seq"] < seen
    messages = ok(login.get(f"/chats/{chat_id}/messages"))["messages"]
    assert [m["text"] for m in messages] == ["before the backup", None]
    assert login.get(f"/media/{note['media']['id']}/content").content == original


def fresh_login(srv: ServerProcess, user: User):
    import httpx

    client = httpx.Client(base_url=srv.url + "/api/v1")
    token = ok(client.post("/auth/login", json={"handle": user.handle, "password": user.password}))
    client.headers["Authorization"] = f"Bearer {token['token']}"
    return client


def test_restore_refuses_a_server_with_users_and_a_wrong_key(
    make_server, make_user, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    srv = make_server()
    make_user(server=srv)
    key, other = tmp_path / "key.txt", tmp_path / "other.txt"
    recipient = run(srv, "admin", "backup-key", "-o", str(key)).strip()
    run(srv, "admin", "backup-key", "-o", str(other))
    dest = destination(srv, tmp_path, request)
    run(srv, "admin", "backup", "--to", dest, "--recipient", recipient)

    refused = srv.run_cli("admin", "restore", "--from", dest, "--identity", str(key))
    assert refused.returncode == 1 and "restore into an empty one" in refused.stderr

    fresh = make_server()
    fresh.stop()
    wrong = fresh.run_cli("admin", "restore", "--from", dest, "--identity", str(other))
    assert wrong.returncode == 1 and "does not open the backup" in wrong.stderr
