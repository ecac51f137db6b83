"""Accounts: registration modes, handle and password rules, login/logout, /me, users, invites,
the admin CLI, and login rate limits per handle and per client address."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from support.api import (
    TIMESTAMP,
    assert_problem,
    login_on,
    make_user_on,
    ok,
    register,
    unique_handle,
)
from support.backends import find_in_database, run_sql
from support.factory import ServerFactory
from support.server import CHEAP_PASSWORD_HASH, ServerProcess


def assert_user(u: dict, handle: str) -> None:
    assert isinstance(u["id"], str) and u["id"]
    assert u["handle"] == handle
    assert "display_name" in u
    assert TIMESTAMP.match(u["created_at"]), u["created_at"]
    assert "password" not in u and "password_hash" not in u


# --- registration ------------------------------------------------------------------------------


def test_register_open_gives_user_and_working_token(server: ServerProcess) -> None:
    handle = unique_handle("reg")
    r = register(server, handle, "correct horse", display_name="Reggie")
    body = ok(r, 201)
    assert_user(body["user"], handle)
    assert body["user"]["display_name"] == "Reggie"
    assert isinstance(body["token"], str) and len(body["token"]) >= 32

    with server.client(body["token"]) as c:
        me = ok(c.get("/me"))
    assert me["id"] == body["user"]["id"]
    assert me["handle"] == handle
    assert me["is_admin"] is False


def test_handle_is_lower_cased(server: ServerProcess) -> None:
    handle = unique_handle("MiXeD.Case")
    body = ok(register(server, handle, "password1"), 201)
    assert body["user"]["handle"] == handle.lower()
    # the lower-cased handle logs in, and so does the handle as typed
    login_on(server, handle.lower(), "password1").http.close()
    login_on(server, handle, "password1").http.close()


@pytest.mark.parametrize(
    "handle",
    [
        "ab",  # too short
        "a" * 33,  # too long
        "has space",
        "dash-not-ok",
        "émile_x",
        "semi;colon",
        "",
        "slash/x",
    ],
)
def test_bad_handles_are_refused(server: ServerProcess, handle: str) -> None:
    assert_problem(register(server, handle, "password1"), 422, "invalid")


HANDLE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_."


@pytest.mark.parametrize("length", [3, 32])
def test_handle_length_bounds_are_accepted(server: ServerProcess, length: int) -> None:
    for _ in range(5):  # a random 3-character handle could be taken already
        handle = "".join(secrets.choice(HANDLE_CHARS) for _ in range(length))
        r = register(server, handle, "password1")
        if r.status_code != 409:
            break
    assert ok(r, 201)["user"]["handle"] == handle


def test_password_needs_eight_chars(server: ServerProcess) -> None:
    assert_problem(register(server, unique_handle(), "1234567"), 422, "invalid")
    ok(register(server, unique_handle(), "12345678"), 201)


def test_taken_handle_is_409_also_with_other_case(server: ServerProcess) -> None:
    handle = unique_handle("taken")
    ok(register(server, handle, "password1"), 201)
    assert_problem(register(server, handle, "password2"), 409, "conflict")
    assert_problem(register(server, handle.upper(), "password2"), 409, "conflict")
    # the first account is untouched
    login_on(server, handle, "password1").http.close()


def test_registration_missing_fields_is_422(anon: httpx.Client) -> None:
    assert_problem(anon.post("/auth/register", json={"handle": unique_handle()}), 422, "invalid")
    assert_problem(anon.post("/auth/register", json={"password": "password1"}), 422, "invalid")


@pytest.fixture(scope="module")
def invite_server(server_factory: ServerFactory) -> Iterator[ServerProcess]:
    yield server_factory.start({"VOXBOX_REGISTRATION": "invite"})


@pytest.fixture(scope="module")
def closed_server(server_factory: ServerFactory) -> Iterator[ServerProcess]:
    yield server_factory.start({"VOXBOX_REGISTRATION": "closed"})


def cli_admin(srv: ServerProcess) -> tuple[str, str]:
    handle, password = unique_handle("admin"), "admin-password"
    srv.admin_create_user(handle, password, admin=True)
    return handle, password


def test_closed_registration_refuses_everyone(closed_server: ServerProcess) -> None:
    handle = unique_handle("closed")
    assert_problem(register(closed_server, handle, "password1"), 403, "forbidden")
    # nothing was created: the handle cannot log in
    with closed_server.client() as c:
        assert_problem(c.post("/auth/login", json={"handle": handle, "password": "password1"}), 401)


def test_closed_registration_refuses_admin_invites_too(closed_server: ServerProcess) -> None:
    handle, password = cli_admin(closed_server)
    admin = login_on(closed_server, handle, password)
    code = ok(admin.http.post("/invites"), 201)["code"]
    assert_problem(register(closed_server, unique_handle(), "password1", invite=code), 403)
    admin.http.close()


def test_invite_mode_needs_an_invite(invite_server: ServerProcess) -> None:
    assert_problem(register(invite_server, unique_handle(), "password1"), 403, "forbidden")
    r = register(invite_server, unique_handle(), "password1", invite="not-a-real-invite")
    assert_problem(r, 403, "forbidden")


def test_admin_cli_creates_admin_who_invites_and_invite_is_single_use(
    invite_server: ServerProcess,
) -> None:
    handle, password = cli_admin(invite_server)
    admin = login_on(invite_server, handle, password)
    try:
        assert admin.me()["is_admin"] is True

        inv = ok(admin.http.post("/invites"), 201)
        assert isinstance(inv["code"], str) and inv["code"]
        assert TIMESTAMP.match(inv["expires_at"]), inv

        newbie = make_user_on(invite_server, invite=inv["code"])
        assert newbie.me()["is_admin"] is False
        newbie.http.close()

        # the same invite again is refused, and creates nobody
        again = unique_handle()
        assert_problem(register(invite_server, again, "password1", invite=inv["code"]), 403)
        with invite_server.client() as c:
            r = c.post("/auth/login", json={"handle": again, "password": "password1"})
            assert_problem(r, 401)
    finally:
        admin.http.close()


def test_non_admin_cannot_create_invites(make_user) -> None:
    user = make_user()
    assert_problem(user.http.post("/invites"), 403, "forbidden")


def test_admin_cli_refuses_bad_handle(server: ServerProcess, tmp_path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("password1")
    r = server.run_cli("admin", "create-user", "no spaces allowed", "--password-file", str(pw))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr


def test_passwords_and_tokens_are_not_stored_in_clear(make_user, server: ServerProcess) -> None:
    password = f"plain-{secrets.token_hex(8)}"
    user = make_user(password=password)
    other = login_on(server, user.handle, password)
    other.http.close()
    # 256-bit random tokens: at least 43 url-safe base64 (or 64 hex) characters, all distinct
    for token in (user.token, other.token):
        assert len(token) >= 43, token
    assert user.token != other.token

    where = (server.settings, str(server.data_dir))
    assert find_in_database(*where, user.handle), "the scan finds nothing at all"  # control
    assert find_in_database(*where, password) == [], "password stored in clear"
    assert find_in_database(*where, user.token) == [], "token stored in clear"
    assert find_in_database(*where, other.token) == [], "token stored in clear"
    assert find_in_database(*where, "$argon2id$"), "no argon2id password hash stored"


def test_changing_the_password_cost_locks_nobody_out(make_server) -> None:
    """A hash made at the production cost still verifies after the setting changes; a login
    re-hashes the password at the new cost."""
    srv = make_server(**dict.fromkeys(CHEAP_PASSWORD_HASH))  # None: the production default
    handle, password = unique_handle("cost"), "production-cost"
    ok(register(srv, handle, password), 201)
    where = (srv.settings, str(srv.data_dir))
    assert find_in_database(*where, "$argon2id$v=19$m=65536,t=3,p=4$"), "not argon2's defaults"

    srv.restart(CHEAP_PASSWORD_HASH)
    with srv.client() as c:
        r = c.post("/auth/login", json={"handle": handle, "password": "wrong-password"})
        assert_problem(r, 401, "unauthorized")
    user = login_on(srv, handle, password)
    user.http.close()
    assert find_in_database(*where, "$argon2id$v=19$m=65536,t=3,p=4$") == []
    assert find_in_database(*where, "$argon2id$v=19$m=8,t=1,p=1$"), "not re-hashed at login"
    login_on(srv, handle, password).http.close()  # the new hash verifies too


# --- login, logout, me, users ------------------------------------------------------------------


def test_login_gives_new_token(make_user, server: ServerProcess) -> None:
    user = make_user(password="s3cret-pass")
    again = login_on(server, user.handle, "s3cret-pass")
    try:
        assert again.id == user.id
        assert again.token != user.token
        assert again.me()["handle"] == user.handle
        assert user.me()["handle"] == user.handle  # the first token still works
    finally:
        again.http.close()


def test_wrong_password_and_unknown_handle_look_the_same(make_user, anon: httpx.Client) -> None:
    user = make_user()
    wrong = anon.post("/auth/login", json={"handle": user.handle, "password": "wrong-password"})
    unknown = anon.post(
        "/auth/login", json={"handle": unique_handle("ghost"), "password": "wrong-password"}
    )
    a = assert_problem(wrong, 401, "unauthorized")
    b = assert_problem(unknown, 401, "unauthorized")
    assert a == b
    assert wrong.headers.get("content-type") == unknown.headers.get("content-type")


def test_logout_revokes_only_that_token(make_user, server: ServerProcess) -> None:
    user = make_user(password="password-1")
    other_session = login_on(server, user.handle, "password-1")
    try:
        r = user.http.post("/auth/logout")
        assert r.status_code == 204, r.text
        assert_problem(user.http.get("/me"), 401, "unauthorized")
        assert_problem(user.http.get("/chats"), 401, "unauthorized")
        assert other_session.me()["id"] == user.id
    finally:
        other_session.http.close()


def test_me_and_user_lookup(make_user) -> None:
    alice = make_user(display_name="Alice A.")
    bob = make_user()
    me = alice.me()
    assert_user(me, alice.handle)
    assert me["is_admin"] is False
    assert me["display_name"] == "Alice A."

    seen = ok(bob.http.get(f"/users/{alice.handle}"))
    assert_user(seen, alice.handle)
    assert seen["id"] == alice.id
    assert seen["display_name"] == "Alice A."

    assert_problem(bob.http.get(f"/users/{unique_handle('nobody')}"), 404, "not_found")


# --- login rate limits -------------------------------------------------------------------------

HANDLE_LIMIT = 3
ADDRESS_LIMIT = 5


@pytest.fixture(scope="module")
def limited_server(server_factory: ServerFactory) -> Iterator[ServerProcess]:
    yield server_factory.start(
        {
            "VOXBOX_LIMITS__LOGIN_ATTEMPTS_PER_HANDLE": str(HANDLE_LIMIT),
            "VOXBOX_LIMITS__LOGIN_ATTEMPTS_PER_ADDRESS": str(ADDRESS_LIMIT),
            "VOXBOX_LIMITS__LOGIN_WINDOW_SECONDS": "60",
        }
    )


def client_from(srv: ServerProcess, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127/8 address reaches loopback).

    Every rate-limit test uses its own source address, so counters kept in a shared Redis by
    other servers or other runs never meet ours.
    """
    return httpx.Client(
        base_url=srv.api_url,
        transport=httpx.HTTPTransport(local_address=address),
        timeout=15.0,
    )


def random_loopback() -> str:
    b = secrets.token_bytes(3)
    return f"127.{b[0]}.{b[1]}.{b[2] % 250 + 2}"


def assert_rate_limited(r: httpx.Response, window: int = 60) -> None:
    assert_problem(r, 429, "rate_limited")
    retry_after = r.headers.get("retry-after")
    assert retry_after is not None, dict(r.headers)
    assert retry_after.isdigit() and 1 <= int(retry_after) <= window, retry_after


def test_login_rate_limit_per_handle_and_address(limited_server: ServerProcess) -> None:
    user = make_user_on(limited_server, password="right-password")
    user.http.close()
    with client_from(limited_server, random_loopback()) as c:
        for _ in range(HANDLE_LIMIT):
            r = c.post("/auth/login", json={"handle": user.handle, "password": "wrong-pass"})
            assert_problem(r, 401)
        # the limit is reached here: even the right password is refused from this address
        r = c.post("/auth/login", json={"handle": user.handle, "password": "right-password"})
        assert_rate_limited(r)
        # another handle from the same place is not limited
        other = make_user_on(limited_server, password="other-password")
        other.http.close()
        r = c.post("/auth/login", json={"handle": other.handle, "password": "other-password"})
        assert r.status_code == 200, r.text
    # ...but nobody can lock the owner out: from an address with no failures, they get in
    with client_from(limited_server, random_loopback()) as c:
        r = c.post("/auth/login", json={"handle": user.handle, "password": "right-password"})
        assert r.status_code == 200, r.text


def test_login_rate_limit_per_address(limited_server: ServerProcess) -> None:
    address = random_loopback()
    user = make_user_on(limited_server, password="right-password")
    user.http.close()
    with client_from(limited_server, address) as c:
        for _ in range(ADDRESS_LIMIT):
            # a different unknown handle each time: only the address limit can trigger
            r = c.post("/auth/login", json={"handle": unique_handle(), "password": "wrong-pass"})
            assert_problem(r, 401)
        r = c.post("/auth/login", json={"handle": user.handle, "password": "right-password"})
        assert_rate_limited(r)
    # the same user from another address logs in fine
    with client_from(limited_server, random_loopback()) as c:
        r = c.post("/auth/login", json={"handle": user.handle, "password": "right-password"})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def strict_server(server_factory: ServerFactory) -> Iterator[ServerProcess]:
    """Registration and sending limits low enough to reach in a test."""
    yield server_factory.start(
        {
            "VOXBOX_REGISTRATION": "invite",
            "VOXBOX_LIMITS__REGISTRATIONS_PER_ADDRESS": "3",
            "VOXBOX_LIMITS__SEND_BURST": "3",
            "VOXBOX_LIMITS__SEND_BURST_SECONDS": "60",
        }
    )


def password_hashes(srv: ServerProcess) -> float:
    r = httpx.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer test-metrics"})
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in r.text.splitlines()
        if line.startswith("voxbox_password_hashes_total{")
    )


def test_registration_is_limited_per_address_and_refused_before_hashing(
    strict_server: ServerProcess,
) -> None:
    with client_from(strict_server, random_loopback()) as c:
        before = password_hashes(strict_server)
        for _ in range(3):
            body = {"handle": unique_handle("x"), "password": "long enough", "invite": "bogus"}
            assert_problem(c.post("/auth/register", json=body), 403, "forbidden")
        assert password_hashes(strict_server) == before  # a bogus invite costs no hash
        body = {"handle": unique_handle("x"), "password": "long enough", "invite": "bogus"}
        assert_rate_limited(c.post("/auth/register", json=body), window=3600)
    with client_from(strict_server, random_loopback()) as c:  # another address is not limited
        body = {"handle": unique_handle("x"), "password": "long enough", "invite": "bogus"}
        assert_problem(c.post("/auth/register", json=body), 403, "forbidden")


def test_sending_is_limited_per_user_with_retry_after(strict_server: ServerProcess) -> None:
    strict_server.admin_create_user(handle := unique_handle("s"), "sender-password", admin=True)
    with client_from(strict_server, random_loopback()) as c:
        token = c.post(
            "/auth/login", json={"handle": handle, "password": "sender-password"}
        ).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        chat = next(ch for ch in c.get("/chats").json()["chats"] if ch["kind"] == "self")
        for n in range(3):
            body = {"client_id": f"c{n}", "kind": "text", "text": f"note {n}"}
            assert c.post(f"/chats/{chat['id']}/messages", json=body).status_code == 201
        body = {"client_id": "c3", "kind": "text", "text": "one too many"}
        assert_rate_limited(c.post(f"/chats/{chat['id']}/messages", json=body))


def test_admin_commands_refuse_a_directory_without_a_server(tmp_path) -> None:
    """Run from the wrong directory, an admin command says where it looked, and creates no
    new empty database there."""
    import subprocess
    import sys

    pw = tmp_path / "pw"
    pw.write_text("long enough password")
    env = {"PATH": "/usr/bin:/bin", "VOXBOX_DATA_DIR": str(tmp_path / "nothing-here")}
    r = subprocess.run(
        [sys.executable, "-m", "voxbox", "admin", "create-user", "bob", "--password-file", str(pw)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "no voxbox database" in r.stderr
    assert str(tmp_path / "nothing-here") in r.stderr
    assert not (tmp_path / "nothing-here" / "voxbox.db").exists()


def test_a_login_unused_for_too_long_ends(make_server) -> None:
    srv = make_server(limits__token_idle_days=1)
    user = make_user_on(srv)
    ok(user.http.get("/me"))
    srv.stop()
    two_days_ago = "'2000-01-01 00:00:00'"
    run_sql(srv.settings, srv.data_dir, f"UPDATE tokens SET last_used_at = {two_days_ago}")
    srv.restart()
    problem = assert_problem(user.http.get("/me"), 401, "unauthorized")
    assert "not used for 1 days" in problem["detail"]
    assert_problem(user.http.get("/me"), 401, "unauthorized")  # and it is gone
    again = make_user_on(srv)  # a fresh login works
    ok(again.http.get("/me"))


def admin_invites(srv: ServerProcess) -> list[str]:
    """The admin invites a server has logged, oldest first."""
    return re.findall(r"One-time admin invite: (\S+)", srv.log_tail(1_000_000))


def test_one_admin_invite_per_deployment(make_server, backend: str) -> None:  # type: ignore[no-untyped-def]
    first = make_server(registration="invite")
    (code,) = admin_invites(first)
    first.restart()
    assert admin_invites(first) == [code, code]  # every start shows the same one

    if backend == "postgres":  # workers of one deployment, starting together, when there is none
        first.stop()
        run_sql(first.settings, first.data_dir, "DELETE FROM invites")
        with ThreadPoolExecutor(2) as pool:
            workers = list(pool.map(lambda _: make_server(share_store_with=first), range(2)))
        shown = [admin_invites(w) for w in workers]
        assert shown[0] == shown[1] and len(shown[0]) == 1 and shown[0] != [code]
        code = shown[0][0]
        first = workers[0]

    admin = make_user_on(first, invite=code)
    assert ok(admin.http.get("/me"))["is_admin"] is True
    shown_before = len(admin_invites(first))
    first.restart()
    assert len(admin_invites(first)) == shown_before  # with an admin, no invite at all
    assert_problem(register(first, unique_handle(), "password1", invite=code), 403)
