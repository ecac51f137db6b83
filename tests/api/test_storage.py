"""Storage quotas, the cap on open uploads, and a full disk (issue 9, item 8)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
import pytest

from support import tus
from support.api import assert_problem, make_user_on, ok
from support.audio import encode
from support.disk import tmpfs
from support.factory import GENEROUS_LIMITS
from support.server import ServerProcess

QUOTA = 100_000


@pytest.fixture(scope="module")
def small(server_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    return server_factory.start(
        {"VOXBOX_LIMITS__STORAGE_QUOTA_BYTES": str(QUOTA), "VOXBOX_LIMITS__OPEN_UPLOADS_MAX": "3"}
    )


def storage(user) -> dict:  # type: ignore[no-untyped-def]
    return ok(user.http.get("/me"))["storage"]


def share(srv: ServerProcess, user, name: str, data: bytes) -> httpx.Response:  # type: ignore[no-untyped-def]
    """The web app's share target (outside /api/v1), as another app shares a file into it."""
    auth = {"Authorization": f"Bearer {user.token}"}
    with httpx.Client(base_url=srv.url, headers=auth) as c:
        return c.post("/share", files={"audio": (name, data, "audio/mpeg")})


def test_me_shows_usage_and_the_quota(small: ServerProcess) -> None:
    alice = make_user_on(small)
    assert storage(alice) == {
        "used_bytes": 0,
        "quota_bytes": QUOTA,
        "open_uploads": 0,
        "open_uploads_max": 3,
    }
    tus.upload(alice.http, b"x" * 5000)
    tus.record(alice.http, [b"y" * 700])
    assert storage(alice) | {"quota_bytes": None} == {
        "used_bytes": 5700,
        "quota_bytes": None,
        "open_uploads": 2,
        "open_uploads_max": 3,
    }


def test_an_upload_past_the_quota_is_refused_and_says_so(small: ServerProcess) -> None:
    alice = make_user_on(small)
    too_big = tus.create(alice.http, length=QUOTA + 1)
    body = assert_problem(too_big, 413, "payload_too_large")
    assert body["reason"] == "storage_quota"
    assert (body["used_bytes"], body["quota_bytes"]) == (0, QUOTA)
    assert "storage is full" in body["detail"]

    first = tus.upload_id(tus.create(alice.http, length=60_000))
    second = tus.create(alice.http, length=60_000)
    assert assert_problem(second, 413, "payload_too_large")["used_bytes"] == 60_000

    # A recording (no length yet) grows until the quota, and no further: none of the
    # refused body is kept, and discarding a draft makes room again.
    draft = tus.record(alice.http, [b"r" * 30_000])
    over = tus.patch(alice.http, draft, 30_000, b"r" * 20_000)
    assert assert_problem(over, 413, "payload_too_large")["reason"] == "storage_quota"
    assert tus.head(alice.http, draft).headers["Upload-Offset"] == "30000"
    assert alice.http.delete(f"/uploads/{first}").status_code == 204
    assert tus.patch(alice.http, draft, 30_000, b"r" * 20_000).status_code == 204
    assert storage(alice)["used_bytes"] == 50_000


def test_a_shared_file_past_the_quota_is_refused(small: ServerProcess) -> None:
    alice = make_user_on(small)
    shared = share(small, alice, "big.mp3", b"\xff" * (QUOTA + 10))
    assert assert_problem(shared, 413, "payload_too_large")["reason"] == "storage_quota"
    assert storage(alice)["open_uploads"] == 0


def test_open_uploads_are_capped(small: ServerProcess) -> None:
    alice = make_user_on(small)
    drafts = [tus.upload_id(tus.create(alice.http, length=10)) for _ in range(3)]
    fourth = tus.create(alice.http, length=10)
    body = assert_problem(fourth, 422, "invalid")
    assert (body["reason"], body["limit"]) == ("too_many_uploads", 3)
    assert "unfinished uploads" in body["detail"]
    assert alice.http.delete(f"/uploads/{drafts[0]}").status_code == 204
    assert tus.create(alice.http, length=10).status_code == 201


def test_sent_media_count_and_deleting_them_frees_room(small: ServerProcess) -> None:
    alice = make_user_on(small)
    message = tus.send_voice_note(alice, alice.self_chat()["id"], 1.0)
    used = storage(alice)["used_bytes"]
    assert 0 < used < QUOTA and storage(alice)["open_uploads"] == 0
    gone = alice.http.delete(f"/messages/{message['id']}", params={"scope": "everyone"})
    assert gone.status_code == 204
    assert storage(alice)["used_bytes"] == 0


def test_a_server_short_of_disk_refuses_new_files_but_not_logins_texts_or_deletes(
    make_server, make_user
) -> None:  # type: ignore[no-untyped-def]
    # Asking for more free space than any disk has puts the server in the state of a full one.
    srv = make_server(limits__min_free_disk_bytes=2**60)
    alice = make_user_on(srv)
    bob = make_user_on(srv)
    refused = tus.create(alice.http, length=100)
    body = assert_problem(refused, 507, "insufficient_storage")
    assert "out of disk space" in body["detail"]
    assert_problem(tus.create(alice.http), 507, "insufficient_storage")
    shared = share(srv, alice, "a.mp3", b"\xff" * 100)
    assert_problem(shared, 507, "insufficient_storage")

    login = alice.http.post(
        "/auth/login", json={"handle": alice.handle, "password": alice.password}
    )
    assert login.status_code == 200
    chat = {"id": alice.direct_with(bob)}
    text = {"client_id": "t1", "kind": "text", "text": "the disk is full"}
    assert alice.http.post(f"/chats/{chat['id']}/messages", json=text).status_code == 201


def test_drafts_made_before_the_disk_filled_can_be_discarded(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server()
    alice = make_user_on(srv)
    draft = tus.record(alice.http, [b"d" * 1000])
    srv.restart({"VOXBOX_LIMITS__MIN_FREE_DISK_BYTES": str(2**60)})
    assert_problem(tus.patch(alice.http, draft, 1000, b"d" * 10), 507, "insufficient_storage")
    assert alice.http.delete(f"/uploads/{draft}").status_code == 204
    assert storage(alice)["open_uploads"] == 0


def test_admin_usage_lists_each_users_storage(small: ServerProcess) -> None:
    carol = make_user_on(small, prefix="carol")
    tus.upload(carol.http, b"z" * 4321)
    shown = small.run_cli("admin", "usage")
    assert shown.returncode == 0, shown.stderr
    line = next(row for row in shown.stdout.splitlines() if carol.handle in row)
    assert "4.3 kB" in line and "1 of 3" in line
    assert "Quota per user: 100.0 kB" in shown.stdout


# A real full disk: the data directory on a small tmpfs (needs root, as in CI).


def test_filling_a_real_disk_stops_at_the_reserve(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "48m") as disk:
        settings = {
            "VOXBOX_REGISTRATION": "open",
            **GENEROUS_LIMITS,
            "VOXBOX_LIMITS__MIN_FREE_DISK_BYTES": str(8 * 1024**2),
            "VOXBOX_LIMITS__DISK_RESERVE_BYTES": str(4 * 1024**2),
            "VOXBOX_LIMITS__STORAGE_QUOTA_BYTES": "0",
        }
        srv = ServerProcess(disk / "data", settings, name="full-disk")
        srv.log_path = tmp_path / "server.log"  # off the disk that fills up
        srv.start()
        try:
            alice = make_user_on(srv)
            bob = make_user_on(srv)
            # One user records until the disk is full: each second of recording is a PATCH.
            draft = tus.upload_id(tus.create(alice.http))
            offset, answer = 0, None
            while offset < 64 * 1024**2:
                answer = tus.patch(alice.http, draft, offset, os.urandom(1024**2))
                if answer.status_code != 204:
                    break
                offset += 1024**2
            assert answer is not None
            assert_problem(answer, 507, "insufficient_storage")
            assert 30 * 1024**2 <= offset <= 40 * 1024**2

            # The reserve keeps the rest of the server working.
            again = {"handle": alice.handle, "password": alice.password}
            assert alice.http.post("/auth/login", json=again).status_code == 200
            chat = {"id": alice.direct_with(bob)}
            text = {"client_id": "full-1", "kind": "text", "text": "my disk is full"}
            assert alice.http.post(f"/chats/{chat['id']}/messages", json=text).status_code == 201
            assert alice.http.delete(f"/uploads/{draft}").status_code == 204

            # Space freed by the delete takes new files again.
            note = encode(1.0, "ogg", "libopus")
            assert tus.upload(alice.http, note, kind="voice")

            # Something else fills the disk to the last byte. The write that finds it full is
            # a 507 that says why (never a 500), and frees the space set aside at start-up:
            # logins, texts and deletes work again, new files wait for the operator.
            later = tus.upload_id(tus.create(alice.http, length=10))
            with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
                while True:
                    filler.write(bytes(65536))
                    filler.flush()
            texts = (
                {"client_id": f"full-{n}", "kind": "text", "text": "x" * 4000} for n in range(2, 9)
            )
            first = alice.http.post(f"/chats/{chat['id']}/messages", json=next(texts))
            body = assert_problem(first, 507, "insufficient_storage")
            assert "disk is full" in body["detail"]
            assert alice.http.post("/auth/login", json=again).status_code == 200
            for text in texts:
                sent = alice.http.post(f"/chats/{chat['id']}/messages", json=text)
                assert sent.status_code == 201, sent.text
            assert alice.http.delete(f"/uploads/{later}").status_code == 204
            assert_problem(tus.create(alice.http, length=10), 507, "insufficient_storage")
        finally:
            srv.stop()
        assert "Traceback" not in srv.log_tail(20_000)
