"""The web app as the server serves it: the shell with a strict CSP, the built files, the share
target. Needs the built front end (`make web`, which `make test` runs first)."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.api import assert_problem, client_id, ok
from support.audio import encode
from support.server import REPO_ROOT

DIST = REPO_ROOT / "src" / "voxbox" / "web" / "dist"
COOKIE = "voxbox_session"

built = pytest.mark.skipif(
    not (DIST / "index.html").is_file(),
    reason=f"the web app is not built ({DIST}/index.html is missing): run `make web`",
)


def raw_get(server, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """GET `path` exactly as written (no client-side normalisation of `..` or `%2e`)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture
def web(server) -> Iterator[httpx.Client]:
    """A client on the server's root (not the API base path)."""
    with httpx.Client(base_url=server.url, timeout=15.0) as c:
        yield c


@pytest.fixture
def browser(server, make_user) -> Iterator[tuple[object, httpx.Client]]:
    """(user, a root client holding the user's session cookie), as the web app would be."""
    user = make_user()
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        r = c.post(
            "/api/v1/auth/login",
            params={"session": "cookie"},
            json={"handle": user.handle, "password": user.password},
        )
        ok(r)
        assert c.cookies.get(COOKIE)
        yield user, c


# --- the shell ---------------------------------------------------------------------------------


@built
@pytest.mark.parametrize(
    "path", ["/", "/chats/01JC0000000000000000000000", "/share", "/starred", "/index.html"]
)
def test_the_shell_has_a_strict_csp(web, path: str) -> None:
    r = web.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.content == (DIST / "index.html").read_bytes()
    csp = r.headers["content-security-policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";")}
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-cache"


@built
def test_the_shell_revalidates_with_its_etag(web) -> None:
    first = web.get("/settings")
    again = web.get("/settings", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert "frame-ancestors 'none'" in again.headers["content-security-policy"]
    assert web.head("/").status_code == 200


@built
def test_the_shell_has_no_inline_script(web) -> None:
    """The CSP forbids inline script: the built page must not need any."""
    html = web.get("/").text.lower()
    for tag in html.split("<script")[1:]:
        assert "src=" in tag.split(">", 1)[0], tag[:200]


async def test_without_a_build_the_shell_is_a_503_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the real server's build must not be touched."""
    from voxbox import web as web_module
    from voxbox.app import create_app
    from voxbox.config import Settings

    monkeypatch.setattr(web_module, "DIST_DIR", tmp_path / "dist")
    app = create_app(Settings(data_dir=tmp_path / "data"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxbox.test") as c:
        r = await c.get("/")
    body = assert_problem(r, 503, "unavailable")
    assert "make web" in body["detail"]


# --- the built files ---------------------------------------------------------------------------


@built
def test_the_service_worker_may_control_the_whole_app(web) -> None:
    r = web.get("/sw.js")
    assert r.status_code == 200
    assert r.content == (DIST / "sw.js").read_bytes()
    assert "javascript" in r.headers["content-type"]
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["service-worker-allowed"] == "/"
    assert r.headers["x-content-type-options"] == "nosniff"


@built
def test_the_manifest_has_its_type(web) -> None:
    r = web.get("/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json()["share_target"]["action"] == "/share"


@built
@built
def test_scripts_go_gzipped_to_browsers_that_take_gzip(web) -> None:
    [script] = [p for p in (DIST / "assets").iterdir() if p.suffix == ".js"]
    r = web.get(f"/assets/{script.name}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("text/javascript")
    assert int(r.headers["content-length"]) < script.stat().st_size / 2
    assert r.content == script.read_bytes()  # httpx decodes it
    plain = web.get(f"/assets/{script.name}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == script.read_bytes()


def test_hashed_assets_are_immutable_and_other_files_revalidate(web) -> None:
    assets = sorted(p for p in (DIST / "assets").iterdir() if p.suffix in (".js", ".css"))
    assert assets, "the build has no assets"
    r = web.get(f"/assets/{assets[0].name}")
    assert r.status_code == 200
    assert r.content == assets[0].read_bytes()
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    icons = sorted((DIST / "icons").glob("*.png"))
    if icons:
        icon = web.get(f"/icons/{icons[0].name}")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/png"
        assert icon.headers["cache-control"] == "no-cache"
        assert icon.headers["x-content-type-options"] == "nosniff"


@built
@pytest.mark.parametrize(
    "path",
    [
        "/assets/../../__init__.py",
        "/assets/%2e%2e/%2e%2e/__init__.py",
        "/assets/..%2f..%2f__init__.py",
        "/%2e%2e/__init__.py",
        "/..%2f..%2f..%2fpyproject.toml",
        "/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/icons/..%5c..%5c__init__.py",
        "/assets/x%00.js",
        "/.gitignore",
    ],
)
def test_paths_out_of_the_build_are_refused(server, path: str) -> None:
    status, headers, body = raw_get(server, path)
    assert status == (400 if "%00" in path else 404), (status, body[:200])  # NUL: no URL at all
    assert headers["content-type"].startswith("application/problem+json"), body[:200]
    assert b"import" not in body and b"root:" not in body


@built
def test_unknown_pages_are_problem_404s_and_the_api_is_not_shadowed(web) -> None:
    assert_problem(web.get("/no/such/page"), 404)
    assert_problem(web.get("/assets/no-such-file.js"), 404)
    assert_problem(web.get("/api/v1/no-such-endpoint"), 404)
    assert_problem(web.get("/api/v1"), 404)
    assert web.get("/healthz").json() == {"status": "ok"}
    assert web.get("/api/v1/healthz").json() == {"status": "ok"}
    metrics = web.get("/metrics", headers={"Authorization": "Bearer test-metrics"})
    assert metrics.headers["content-type"].startswith("text/plain")
    schema = web.get("/api/v1/openapi.json").json()
    assert "/api/v1/auth/login" in schema["paths"]
    assert not any(p in schema["paths"] for p in ("/", "/share", "/{path}", "/sw.js"))
    assert_problem(web.post("/api/v1/chats", json={}), 401)
    assert_problem(web.post("/api/v1/no-such-endpoint", json={}), 404)
    assert_problem(web.put("/api/v1/me"), 405, "method_not_allowed")
    slash = web.get("/api/v1/healthz/", follow_redirects=False)
    assert slash.status_code == 307
    assert slash.headers["location"].endswith("/api/v1/healthz")


# --- the share target --------------------------------------------------------------------------


def open_uploads(user) -> list[dict]:
    return ok(user.http.get("/uploads", params={"state": "open"}))["uploads"]


def shared_ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("/share?uploads="), location
    return location.removeprefix("/share?uploads=").split(",")


def test_share_stores_the_files_as_open_uploads(server, browser) -> None:
    user, c = browser
    song, memo = encode(1, "mp3", "libmp3lame"), encode(1, "ipod", "aac")
    r = c.post(
        "/share",
        data={"title": "From the recorder", "text": "listen", "url": ""},
        files=[
            ("audio", ("song.mp3", song, "audio/mpeg")),
            ("audio", ("memo.m4a", memo, "audio/mp4")),
        ],
        follow_redirects=False,
    )
    ids = shared_ids(r)
    assert len(ids) == 2
    listed = {u["id"]: u for u in open_uploads(user)}
    for uid, name, data, ctype in zip(
        ids, ("song.mp3", "memo.m4a"), (song, memo), ("audio/mpeg", "audio/mp4"), strict=True
    ):
        upload = listed[uid]
        assert upload["offset"] == upload["length"] == len(data)
        assert upload["metadata"] == {"filename": name, "content_type": ctype, "kind": "audio"}
        assert "chat_id" not in upload["metadata"]
        assert user.http.get(f"/uploads/{uid}/content").content == data


def test_a_shared_file_is_finished_once_and_sent_to_several_chats(server, browser, make_user):
    """What the "Send to…" page does: finish the upload, post the media to each chat."""
    user, c = browser
    bob = make_user()
    chats = [user.self_chat()["id"], user.direct_with(bob)]
    song = encode(2, "mp3", "libmp3lame")
    r = c.post(
        "/share",
        files={"audio": ("song.mp3", song, "audio/mpeg")},
        headers={"Origin": server.url},
        follow_redirects=False,
    )
    (uid,) = shared_ids(r)
    media = ok(user.http.post(f"/uploads/{uid}/finish", json={"kind": "audio"}), 201)
    assert media["filename"] == "song.mp3"
    for chat_id in chats:
        body = {"kind": "audio", "media_id": media["id"], "client_id": client_id()}
        sent = ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)
        assert sent["media"]["id"] == media["id"]
    assert bob.messages(chats[1])[-1]["media"]["id"] == media["id"]
    assert open_uploads(user) == []


def test_share_with_a_bearer_token_works_too(server, make_user) -> None:
    user = make_user()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user.token}"}) as c:
        r = c.post("/share", files={"audio": ("a.mp3", b"ID3" + b"\0" * 100, "audio/mpeg")})
    (uid,) = shared_ids(r)
    assert [u["id"] for u in open_uploads(user)] == [uid]


def test_a_shared_song_of_several_megabytes_is_taken(server, make_user) -> None:
    """Files shared in are streamed like uploads, not held to the JSON body limit."""
    user = make_user()
    song = b"ID3" + os.urandom(3 * 1024 * 1024)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user.token}"}) as c:
        r = c.post("/share", files={"audio": ("song.mp3", song, "audio/mpeg")})
    (uid,) = shared_ids(r)
    assert open_uploads(user) == [u for u in open_uploads(user) if u["id"] == uid]
    assert open_uploads(user)[0]["length"] == len(song)


def test_share_when_not_logged_in_redirects_to_login(web, server) -> None:
    files = {"audio": ("song.mp3", b"ID3" + b"\0" * 100, "audio/mpeg")}
    r = web.post("/share", files=files, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/?shared=login"
    with httpx.Client(base_url=server.url, cookies={COOKIE: "stale-token"}) as c:
        r = c.post("/share", files=files, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/?shared=login"


def test_share_from_another_page_stages_the_files_for_the_user_to_confirm(browser) -> None:
    """A plain HTML form elsewhere may send a desktop user here; nothing is sent until they
    pick chats on "Send to…"."""
    user, c = browser
    r = c.post(
        "/share",
        files={"audio": ("song.mp3", b"ID3" + b"\0" * 100, "audio/mpeg")},
        headers={"Origin": "null"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/share?uploads=")
    assert [u["metadata"]["filename"] for u in open_uploads(user)] == ["song.mp3"]


def test_share_without_files(browser) -> None:
    user, c = browser
    r = c.post("/share", data={"title": "t", "text": "only text"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/share?error=no_files"
    fields = {"title": (None, "t"), "url": (None, "https://example.com/")}
    r = c.post("/share", files=fields, follow_redirects=False)
    assert r.request.headers["content-type"].startswith("multipart/form-data")
    assert r.headers["location"] == "/share?error=no_files"
    empty = c.post(
        "/share",
        data={"text": "x"},
        files={"audio": ("", b"", "application/octet-stream")},  # an empty file input
        follow_redirects=False,
    )
    assert empty.headers["location"] == "/share?error=no_files"
    not_a_form = c.post(
        "/share", content=b"audio", headers={"Content-Type": "audio/mpeg"}, follow_redirects=False
    )
    assert_problem(not_a_form, 400)
    assert open_uploads(user) == []


def test_share_over_the_upload_limit_is_413_and_keeps_nothing(make_server, make_user) -> None:
    server = make_server(limits__upload_max_bytes=64 * 1024)
    user = make_user(server=server)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user.token}"}) as c:
        small = ("small.mp3", b"ID3" + b"\0" * 1000, "audio/mpeg")
        big = ("big.mp3", b"ID3" + b"\0" * (64 * 1024), "audio/mpeg")
        r = c.post("/share", files=[("audio", small), ("audio", big)], follow_redirects=False)
        assert_problem(r, 413)
        assert open_uploads(user) == []
        r = c.post("/share", files=[("audio", small)], follow_redirects=False)
        assert len(shared_ids(r)) == 1
    spool = server.data_dir / "tmp"
    leftovers = [p.name for p in spool.iterdir() if p.name.startswith("part-")]
    assert leftovers == []
