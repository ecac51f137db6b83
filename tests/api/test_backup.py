"""A user's encrypted backup: made on one server, opened by the standard age tool, restored into
a fresh account on a fresh server; refused whole when the passphrase is wrong or the file is
damaged; restoring twice adds nothing."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from support import agecli
from support.api import assert_problem, ok
from support.backends import run_sql
from support.cli import login, voxbox
from support.cli import ok as cli_ok
from support.tus import send_voice_note

PASSPHRASE = "correct horse battery"


def wait_task(user, path: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = ok(user.http.get(path))
        if task["state"] != "running":
            return task
        time.sleep(0.1)  # tasks have no event; poll as the web app does
    raise AssertionError(f"{path} still running")


def make_backup(user, passphrase: str = PASSPHRASE) -> bytes:
    started = ok(user.http.post("/backups", json={"passphrase": passphrase}), 202)
    assert started["state"] == "running"
    task = wait_task(user, f"/backups/{started['id']}")
    assert task["state"] == "ready", task
    r = user.http.get(f"/backups/{task['id']}/download")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    assert len(r.content) == task["size"]
    return r.content


def restore(user, data: bytes, passphrase: str = PASSPHRASE):
    return user.http.post(
        "/backups/restore",
        data={"passphrase": passphrase},
        files={"file": ("backup.age", data, "application/octet-stream")},
    )


def chat_by_title(user, title: str) -> dict:
    chats = ok(user.http.get("/chats"))["chats"]
    return next(c for c in chats if c["title"] == title)


def history(user, chat_id: str) -> list[dict]:
    return ok(user.http.get(f"/chats/{chat_id}/messages", params={"limit": 200}))["messages"]


def test_a_backup_comes_back_in_a_fresh_account_on_another_server(
    make_user, make_server, tmp_path: Path
) -> None:
    alice = make_user(display_name="Alice")
    bob = make_user(display_name="Bob")
    chat_id = alice.direct_with(bob)
    hello = alice.send(chat_id, "hello Bob")
    note = send_voice_note(bob, chat_id, 1.2)
    alice.send(chat_id, "lovely", reply_to=note["id"])
    ok(alice.http.put(f"/messages/{note['id']}/star"), 204)
    self_chat = next(c for c in ok(alice.http.get("/chats"))["chats"] if c["kind"] == "self")
    alice.send(self_chat["id"], "remember the milk")
    original_ogg = alice.http.get(f"/media/{note['media']['id']}/content").content

    data = make_backup(alice)

    # The standard tool opens it with the passphrase: a zip of the user's chats.
    (tmp_path / "b.age").write_bytes(data)
    agecli.decrypt_with_passphrase(tmp_path / "b.age", PASSPHRASE, tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        manifest = json.loads(zf.read("backup.json"))
        assert manifest["user"]["handle"] == alice.handle
        assert {c["kind"] for c in manifest["chats"]} == {"direct", "self"}
        lines = zf.read("messages.jsonl").decode().splitlines()
        assert any(json.loads(line)["text"] == "hello Bob" for line in lines)

    elsewhere = make_server()
    carol = make_user(server=elsewhere, display_name="Carol")
    started = ok(restore(carol, data), 202)
    task = wait_task(carol, f"/backups/restore/{started['id']}")
    assert task["state"] == "ready", task
    assert task["counts"]["messages"] == 4 and task["counts"]["chats"] == 2

    restored = chat_by_title(carol, "Bob")
    assert [m["handle"] for m in restored["members"]] == [carol.handle]
    messages = history(carol, restored["id"])
    assert [m["text"] for m in messages] == ["hello Bob", None, "lovely"]
    mine, theirs, reply = messages
    assert mine["sender"] == carol.handle and mine["sender_name"] is None
    assert mine["created_at"] == hello["created_at"] and mine["imported"] == "backup"
    assert theirs["sender_name"] == "Bob" and theirs["kind"] == "voice"
    assert reply["reply_to"] == theirs["id"]
    assert theirs["media"]["duration_ms"] == note["media"]["duration_ms"]
    assert carol.http.get(f"/media/{theirs['media']['id']}/content").content == original_ogg
    starred = ok(carol.http.get("/starred"))["messages"]
    assert [m["id"] for m in starred] == [theirs["id"]]
    own_notes = next(c for c in ok(carol.http.get("/chats"))["chats"] if c["kind"] == "self")
    assert [m["text"] for m in history(carol, own_notes["id"])] == ["remember the milk"]

    # Restoring again adds nothing.
    again = wait_task(carol, f"/backups/restore/{ok(restore(carol, data), 202)['id']}")
    assert again["state"] == "ready" and again["counts"]["messages"] == 0
    assert again["counts"]["already_there"] == 4
    assert len(history(carol, restored["id"])) == 3
    assert len(ok(carol.http.get("/chats"))["chats"]) == 2


def test_a_wrong_passphrase_or_a_damaged_file_changes_nothing(make_user) -> None:
    alice = make_user(display_name="Alice")
    bob = make_user()
    alice.send(alice.direct_with(bob), "hi")
    data = make_backup(alice)
    dave = make_user()
    before = ok(dave.http.get("/chats"))

    assert_problem(restore(dave, data, "not the passphrase"), 422, "invalid")
    assert_problem(restore(dave, b"PK\x03\x04 not age"), 422, "invalid")
    assert "Wrong passphrase" in restore(dave, data, "not the passphrase").json()["detail"]

    damaged = [data[: len(data) - 7], data[:-40] + bytes(40)]
    for broken in damaged:
        task = wait_task(dave, f"/backups/restore/{ok(restore(dave, broken), 202)['id']}")
        assert task["state"] == "failed" and "damaged or incomplete" in task["error"]
    assert ok(dave.http.get("/chats")) == before


def test_a_backup_is_only_its_owners_and_chats_still_here_stay_as_they_are(make_user) -> None:
    alice = make_user()
    bob = make_user()
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "one")
    started = ok(alice.http.post("/backups", json={"passphrase": PASSPHRASE}), 202)
    assert_problem(bob.http.get(f"/backups/{started['id']}"), 404, "not_found")
    assert_problem(bob.http.get(f"/backups/{started['id']}/download"), 404, "not_found")
    wait_task(alice, f"/backups/{started['id']}")
    assert_problem(alice.http.post("/backups", json={"passphrase": "short"}), 422, "invalid")

    data = alice.http.get(f"/backups/{started['id']}/download").content
    task = wait_task(alice, f"/backups/restore/{ok(restore(alice, data), 202)['id']}")
    assert task["counts"]["chats_still_here"] == 2 and task["counts"]["messages"] == 0
    assert len(ok(alice.http.get("/chats"))["chats"]) == 2


def test_backup_and_restore_from_the_cli(make_user, make_server, server, tmp_path: Path) -> None:
    alice = make_user(display_name="Alice")
    bob = make_user(display_name="Bob")
    alice.send(alice.direct_with(bob), "kept safe")
    home = login(server, alice, tmp_path / "home")
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "mine.age"
    result = voxbox(home, "backup", "create", "-o", str(out), "--passphrase-file", str(secret))
    cli_ok(result)
    assert result.stdout.strip() == str(out) and out.read_bytes().startswith(
        b"age-encryption.org/v1\n-> scrypt "
    )

    elsewhere = make_server()
    erin = make_user(server=elsewhere)
    home2 = login(elsewhere, erin, tmp_path / "home2")
    wrong = tmp_path / "wrong"
    wrong.write_text("something else\n")
    refused = voxbox(home2, "backup", "restore", str(out), "--passphrase-file", str(wrong))
    assert refused.returncode == 1 and "Wrong passphrase" in refused.stderr
    restored = voxbox(home2, "backup", "restore", str(out), "--passphrase-file", str(secret))
    cli_ok(restored)
    assert "messages: 1" in restored.stdout
    assert [m["text"] for m in history(erin, chat_by_title(erin, "Bob")["id"])] == ["kept safe"]


def test_a_backup_whose_server_died_fails_and_can_be_started_again(make_server, make_user):
    """A running task heartbeats; one silent for a lease died with its process (any worker's,
    whichever restarts): it reads as failed, and the user may start another."""
    server = make_server(jobs__lease_seconds="2")
    alice = make_user(server=server)
    done = wait_task(
        alice,
        f"/backups/{ok(alice.http.post('/backups', json={'passphrase': PASSPHRASE}), 202)['id']}",
    )
    assert done["state"] == "ready"
    run_sql(
        server.settings,
        server.data_dir,
        "UPDATE tasks SET state = 'running', finished_at = NULL, "
        f"heartbeat_at = '2000-01-01 00:00:00' WHERE id = '{done['id']}'",
    )
    dead = ok(alice.http.get(f"/backups/{done['id']}"))
    assert dead["state"] == "failed"
    assert dead["error"] == "The server running this stopped; start it again."
    again = ok(alice.http.post("/backups", json={"passphrase": PASSPHRASE}), 202)
    assert wait_task(alice, f"/backups/{again['id']}")["state"] == "ready"
