"""Resumable uploads (tus) and downloads of the Python client and `voxbox send FILE` /
`voxbox download`, against a fake tus + media server on httpx.MockTransport."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from voxbox.cli import client_commands, output
from voxbox.client import VoxboxAPIError, VoxboxClient, VoxboxError
from voxbox.client import uploads as uploads_module
from voxbox.client.config import (
    Credentials,
    PendingUpload,
    config_dir,
    forget_pending_upload,
    load_pending_upload,
    save_credentials,
    save_pending_upload,
    upload_key,
)
from voxbox.client.uploads import (
    FileUpload,
    download_media,
    download_name,
    part_paths,
    safe_filename,
    send_file,
    upload_file,
)

BASE = "http://voxbox.test"
UPLOADS_PREFIX = "/api/v1/uploads/"

# A fault sees each request before the fake server does. It may return a response (the server
# is not consulted), raise (a broken connection), or return None to let the request through.
Fault = Callable[[httpx.Request, "FakeServer"], httpx.Response | None]


def problem(status: int, code: str, detail: str = "") -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": detail, "code": code}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def decode_metadata(header: str) -> dict[str, str]:
    pairs = (item.strip().split(" ", 1) for item in header.split(",") if item.strip())
    return {key: base64.b64decode(value).decode() for key, value in pairs}


@dataclass
class Upload:
    length: int
    metadata: dict[str, str]
    data: bytearray = field(default_factory=bytearray)


class BrokenStream(httpx.SyncByteStream):
    """A response body that breaks off after ``size`` bytes."""

    def __init__(self, content: bytes, size: int) -> None:
        self.content, self.size = content, size

    def __iter__(self) -> Iterator[bytes]:
        yield self.content[: self.size]
        raise httpx.ReadError("connection reset")


class FakeServer:
    """Just enough of voxbox: tus uploads, posting an upload as a message (idempotent by
    client_id), GET /messages/{id}, media content with Range/If-Range/ETag, GET /chats."""

    def __init__(self) -> None:
        self.uploads: dict[str, Upload] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.by_client_id: dict[str, str] = {}
        self.contents: dict[tuple[str, str], bytes] = {}
        self.requests: list[httpx.Request] = []
        self.faults: list[Fault] = []
        self.refuse: dict[str, httpx.Response] = {}  # filename -> answer to posting it
        self.broken_body_at: int | None = None  # media bodies break off after this many bytes
        self._ids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in list(self.faults):
            answer = fault(request, self)
            if answer is not None:
                return answer
        return self.handle(request)

    # -- helpers for tests ---------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def patches(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "PATCH"]

    def add_upload(self, data: bytes, length: int, **metadata: str) -> str:
        upload_id = self.new_id("up")
        self.uploads[upload_id] = Upload(length, metadata, bytearray(data))
        return f"{BASE}{UPLOADS_PREFIX}{upload_id}"

    def add_media(self, content: bytes, *, fmt: str = "original", media_id: str = "m1") -> str:
        self.contents[(media_id, fmt)] = content
        return media_id

    @staticmethod
    def etag(content: bytes) -> str:
        return '"' + hashlib.sha256(content).hexdigest()[:16] + '"'

    # -- the server ----------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.headers.get("authorization") != "Bearer tok":
            return problem(401, "unauthorized")
        if path == "/api/v1/chats" and request.method == "GET":
            return httpx.Response(200, json={"chats": [{"id": "c1", "kind": "self"}]})
        if path == "/api/v1/uploads" and request.method == "POST":
            return self.create(request)
        if path.startswith(UPLOADS_PREFIX):
            return self.tus(request, path.removeprefix(UPLOADS_PREFIX))
        if match := re.fullmatch(r"/api/v1/chats/([^/]+)/messages", path):
            return self.post_message(request, match.group(1))
        if match := re.fullmatch(r"/api/v1/messages/([^/]+)", path):
            message = self.messages.get(match.group(1))
            return httpx.Response(200, json=message) if message else problem(404, "not_found")
        if match := re.fullmatch(r"/api/v1/media/([^/]+)/content", path):
            return self.content(request, match.group(1))
        return problem(404, "not_found", f"no route {request.method} {path}")

    def create(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["tus-resumable"] == "1.0.0"
        upload_id = self.new_id("up")
        metadata = decode_metadata(request.headers["upload-metadata"])
        self.uploads[upload_id] = Upload(int(request.headers["upload-length"]), metadata)
        return httpx.Response(201, headers={"Location": UPLOADS_PREFIX + upload_id})

    def tus(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return problem(404, "not_found")
        assert request.headers["tus-resumable"] == "1.0.0"
        if request.method == "HEAD":
            headers = {"Upload-Offset": str(len(upload.data)), "Upload-Length": str(upload.length)}
            return httpx.Response(200, headers=headers | {"Tus-Resumable": "1.0.0"})
        if request.method == "DELETE":
            del self.uploads[upload_id]
            return httpx.Response(204)
        assert request.method == "PATCH"
        assert request.headers["content-type"] == "application/offset+octet-stream"
        if int(request.headers["upload-offset"]) != len(upload.data):
            return problem(409, "conflict", "wrong offset")
        body = request.content
        assert int(request.headers["content-length"]) == len(body)
        if len(upload.data) + len(body) > upload.length:
            return problem(413, "payload_too_large")
        upload.data += body
        return httpx.Response(204, headers={"Upload-Offset": str(len(upload.data))})

    def post_message(self, request: httpx.Request, chat_id: str) -> httpx.Response:
        body = json.loads(request.content)
        known = self.by_client_id.get(body["client_id"])
        if known is not None:
            return httpx.Response(200, json=self.messages[known])
        upload = self.uploads.get(body["upload_id"])
        if upload is None:
            return problem(404, "not_found", "no such upload")
        if len(upload.data) != upload.length:
            return problem(409, "conflict", "upload incomplete")
        refusal = self.refuse.get(upload.metadata["filename"])
        if refusal is not None:
            del self.uploads[body["upload_id"]]
            return refusal
        del self.uploads[body["upload_id"]]  # posting consumes the upload
        media_id = self.new_id("m")
        self.contents[(media_id, "original")] = bytes(upload.data)
        self.contents[(media_id, "ogg")] = b"OggS" + bytes(upload.data[:100])
        message_id = self.new_id("msg")
        self.messages[message_id] = {
            "id": message_id,
            "chat_id": chat_id,
            "client_id": body["client_id"],
            "kind": body["kind"],
            "media": {
                "id": media_id,
                "kind": body["kind"],
                "filename": upload.metadata["filename"],
                "size": upload.length,
            },
        }
        self.by_client_id[body["client_id"]] = message_id
        return httpx.Response(201, json=self.messages[message_id])

    def content(self, request: httpx.Request, media_id: str) -> httpx.Response:
        content = self.contents.get((media_id, request.url.params.get("format", "original")))
        if content is None:
            return problem(404, "not_found")
        etag = self.etag(content)
        start = 0
        if (match := re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))) and (
            request.headers.get("if-range") in (None, etag)
        ):
            start = int(match.group(1))
            if start >= len(content):
                return problem(416, "range_not_satisfiable")
        body = content[start:]
        headers = {"ETag": etag, "Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        if self.broken_body_at is not None:
            cut, self.broken_body_at = self.broken_body_at, None
            return httpx.Response(status, headers=headers, stream=BrokenStream(body, cut))
        return httpx.Response(status, headers=headers, content=body)


def once(fault: Fault, *, on: Callable[[httpx.Request], bool]) -> Fault:
    """``fault`` applied to the first request for which ``on`` is true, then removed."""

    def apply(request: httpx.Request, server: FakeServer) -> httpx.Response | None:
        if not on(request):
            return None
        server.faults.remove(apply)
        return fault(request, server)

    return apply


def nth_patch(n: int) -> Callable[[httpx.Request], bool]:
    """True for the n-th PATCH (1-based) seen from now on."""
    seen = itertools.count(1)

    def check(request: httpx.Request) -> bool:
        return request.method == "PATCH" and next(seen) == n

    return check


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(fake: FakeServer) -> Iterator[VoxboxClient]:
    with VoxboxClient(BASE, "tok", transport=httpx.MockTransport(fake)) as c:
        yield c


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads_module, "RETRY_BASE_DELAY", 0.0)


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "memo.m4a"
    path.write_bytes(os.urandom(300_000))
    return path


def only_upload(fake: FakeServer) -> Upload:
    assert len(fake.uploads) == 1, fake.uploads
    return next(iter(fake.uploads.values()))


def patch_offsets(fake: FakeServer) -> list[int]:
    return [int(r.headers["upload-offset"]) for r in fake.patches()]


# -- uploads ----------------------------------------------------------------------------------


def test_upload_creates_then_patches_in_chunks(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    progress: list[tuple[int, int | None]] = []
    upload_id = upload_file(
        client,
        audio,
        kind="voice",
        chat_id="c1",
        chunk_size=100_000,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    upload = fake.uploads[upload_id]
    assert bytes(upload.data) == audio.read_bytes()
    assert upload.metadata == {
        "filename": "memo.m4a",
        "content_type": "audio/mp4",
        "kind": "voice",
        "chat_id": "c1",
    }
    create = fake.requests[0]
    assert (create.method, create.headers["upload-length"]) == ("POST", "300000")
    assert patch_offsets(fake) == [0, 100_000, 200_000]
    dones = [done for done, _ in progress]
    assert dones == sorted(dones) and dones[-1] == 300_000
    assert {total for _, total in progress} == {300_000}
    # Progress is also reported inside a chunk, as its blocks go out.
    assert any(done % 100_000 for done in dones)


def test_409_then_head_and_continue(fake: FakeServer, client: VoxboxClient, audio: Path) -> None:
    fake.faults.append(once(lambda r, s: problem(409, "conflict"), on=nth_patch(2)))
    upload_id = upload_file(client, audio, kind="audio", chunk_size=100_000)

    assert bytes(fake.uploads[upload_id].data) == audio.read_bytes()
    methods = [r.method for r in fake.requests]
    assert methods == ["POST", "PATCH", "PATCH", "HEAD", "PATCH", "PATCH"]


def test_lost_answer_to_a_patch_is_not_sent_twice(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    """The server stored the chunk but the answer never came: HEAD shows it, go on from there."""

    def store_then_break(request: httpx.Request, server: FakeServer) -> httpx.Response:
        server.handle(request)
        raise httpx.ReadError("connection reset")

    fake.faults.append(once(store_then_break, on=nth_patch(1)))
    upload_id = upload_file(client, audio, kind="audio", chunk_size=100_000)

    assert bytes(fake.uploads[upload_id].data) == audio.read_bytes()
    assert patch_offsets(fake) == [0, 100_000, 200_000]


def test_broken_patch_resumes_from_the_server_offset(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    """The connection broke mid-chunk after the server kept part of it."""

    def half_then_break(request: httpx.Request, server: FakeServer) -> httpx.Response:
        upload = only_upload(server)
        upload.data += request.content[:30_000]
        raise httpx.WriteError("broken pipe")

    fake.faults.append(once(half_then_break, on=nth_patch(2)))
    upload_id = upload_file(client, audio, kind="audio", chunk_size=100_000)

    assert bytes(fake.uploads[upload_id].data) == audio.read_bytes()
    assert patch_offsets(fake) == [0, 100_000, 130_000, 230_000]
    assert [r.method for r in fake.requests].count("HEAD") == 1


def test_gives_up_after_repeated_failures(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    def always_break(request: httpx.Request, server: FakeServer) -> httpx.Response | None:
        if request.method == "PATCH":
            raise httpx.ConnectError("refused")
        return None

    fake.faults.append(always_break)
    with pytest.raises(httpx.ConnectError):
        upload_file(client, audio, kind="audio", chunk_size=100_000)
    assert len(fake.patches()) == uploads_module.MAX_ATTEMPTS


def test_client_errors_are_not_retried(fake: FakeServer, client: VoxboxClient, audio: Path) -> None:
    fake.faults.append(
        lambda r, s: problem(413, "payload_too_large") if r.method == "PATCH" else None
    )
    with pytest.raises(VoxboxAPIError) as caught:
        upload_file(client, audio, kind="audio")
    assert caught.value.status == 413
    assert len(fake.patches()) == 1


def test_resume_url_continues_at_the_server_offset(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    content = audio.read_bytes()
    url = fake.add_upload(content[:123_456], len(content), filename="memo.m4a")
    created: list[str] = []
    upload_id = upload_file(client, audio, kind="audio", resume_url=url, on_created=created.append)

    assert bytes(fake.uploads[upload_id].data) == content
    assert url.endswith(upload_id)
    assert [r.method for r in fake.requests] == ["HEAD", "PATCH"]
    assert patch_offsets(fake) == [123_456]
    assert created == []


def test_resume_url_gone_starts_over(fake: FakeServer, client: VoxboxClient, audio: Path) -> None:
    created: list[str] = []
    gone = f"{BASE}{UPLOADS_PREFIX}expired"
    upload_id = upload_file(client, audio, kind="audio", resume_url=gone, on_created=created.append)

    assert bytes(fake.uploads[upload_id].data) == audio.read_bytes()
    assert [r.method for r in fake.requests][:2] == ["HEAD", "POST"]
    assert created == [f"{BASE}{UPLOADS_PREFIX}{upload_id}"]


def test_resume_of_an_upload_of_another_length_discards_it(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    other = fake.add_upload(b"x" * 10, 999)
    upload = FileUpload(client, audio, kind="audio")
    assert upload.resume(other) is False
    assert fake.uploads == {}


def test_upload_urls_on_another_server_are_refused(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    fake.faults.append(
        lambda r, s: httpx.Response(201, headers={"Location": "https://evil.test/uploads/1"})
    )
    with pytest.raises(VoxboxError, match="Unexpected upload URL"):
        upload_file(client, audio, kind="audio")
    with pytest.raises(VoxboxError, match="Unexpected upload URL"):
        client.upload_offset("http://evil.test/api/v1/uploads/1")


def test_a_file_that_shrinks_mid_upload_fails(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    upload = FileUpload(client, audio, kind="audio", chunk_size=100_000)
    upload.create()
    audio.write_bytes(audio.read_bytes()[:50_000])
    with pytest.raises(VoxboxError, match="changed"):
        upload.run()


def test_send_file_posts_the_upload_once_per_client_id(
    fake: FakeServer, client: VoxboxClient, audio: Path
) -> None:
    message = send_file(client, "c1", audio, voice=True, client_id="cid-1")
    assert message["kind"] == "voice"
    assert message["media"]["filename"] == "memo.m4a"
    posted = json.loads(fake.requests[-1].content)
    assert posted["client_id"] == "cid-1" and posted["kind"] == "voice"
    assert fake.patches()[0].url.path == UPLOADS_PREFIX + posted["upload_id"]

    again = send_file(client, "c1", audio, voice=True, client_id="cid-1")
    assert again["id"] == message["id"]
    assert len(fake.messages) == 1
    assert client.message(message["id"]) == message


# -- resume state -------------------------------------------------------------------------------


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "conf"
    monkeypatch.setenv("VOXBOX_CONFIG_DIR", str(directory))
    return directory


def test_pending_upload_round_trip(conf: Path, audio: Path) -> None:
    credentials = Credentials(url=BASE, token="tok", handle="ann")
    key = upload_key(audio, credentials, chat_id="c1", kind="audio", stat=audio.stat())
    assert load_pending_upload(key) is None

    pending = PendingUpload(upload_url=f"{BASE}/api/v1/uploads/u1", client_id="cid")
    save_pending_upload(key, pending, path=audio)
    assert load_pending_upload(key) == pending
    file = config_dir() / "uploads.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(file.read_text())[key]["path"] == str(audio)

    forget_pending_upload(key)
    assert load_pending_upload(key) is None
    forget_pending_upload(key)  # forgetting twice is fine


def test_upload_key_covers_file_server_user_chat_and_kind(audio: Path) -> None:
    ann = Credentials(url=BASE, token="tok", handle="ann")
    st = audio.stat()
    base = upload_key(audio, ann, chat_id="c1", kind="audio", stat=st)
    assert base == upload_key(audio, ann, chat_id="c1", kind="audio", stat=st)
    variants = [
        upload_key(audio, ann, chat_id="c2", kind="audio", stat=st),
        upload_key(audio, ann, chat_id="c1", kind="voice", stat=st),
        upload_key(audio, Credentials(BASE, "tok", "bob"), chat_id="c1", kind="audio", stat=st),
        upload_key(
            audio, Credentials("http://x.test", "t", "ann"), chat_id="c1", kind="audio", stat=st
        ),
        upload_key(audio.with_name("other.m4a"), ann, chat_id="c1", kind="audio", stat=st),
    ]
    os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    variants.append(upload_key(audio, ann, chat_id="c1", kind="audio", stat=audio.stat()))
    with audio.open("ab") as f:
        f.write(b"more")
    variants.append(upload_key(audio, ann, chat_id="c1", kind="audio", stat=audio.stat()))
    assert len({base, *variants}) == len(variants) + 1


def test_old_entries_are_pruned(conf: Path, audio: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_pending_upload("old", PendingUpload("u-old", "c-old"), path=audio)
    file = config_dir() / "uploads.json"
    data = json.loads(file.read_text())
    data["old"]["saved_at"] -= 31 * 24 * 3600
    file.write_text(json.dumps(data))
    save_pending_upload("new", PendingUpload("u-new", "c-new"), path=audio)
    assert set(json.loads(file.read_text())) == {"new"}


# -- downloads --------------------------------------------------------------------------------


def test_download_to_dest(fake: FakeServer, client: VoxboxClient, tmp_path: Path) -> None:
    content = os.urandom(200_000)
    fake.add_media(content)
    progress: list[tuple[int, int | None]] = []
    dest = download_media(
        client, "m1", tmp_path / "out.m4a", "original", lambda d, t: progress.append((d, t))
    )

    assert dest.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.m4a"]
    assert progress[-1] == (200_000, 200_000)
    request = fake.requests[-1]
    assert request.url.params["format"] == "original"
    assert "range" not in request.headers
    assert request.headers["accept-encoding"] == "identity"


def test_interrupted_download_resumes_with_range(
    fake: FakeServer, client: VoxboxClient, tmp_path: Path
) -> None:
    content = os.urandom(200_000)
    fake.add_media(content, fmt="ogg")
    fake.broken_body_at = 70_000
    dest = tmp_path / "voice.ogg"
    with pytest.raises(httpx.ReadError):
        download_media(client, "m1", dest, "ogg")
    part, etag_file = part_paths(dest)
    assert part.stat().st_size == 70_000
    assert etag_file.read_text() == fake.etag(content)
    assert not dest.exists()

    progress: list[tuple[int, int | None]] = []
    download_media(client, "m1", dest, "ogg", lambda d, t: progress.append((d, t)))
    assert dest.read_bytes() == content
    assert not part.exists() and not etag_file.exists()
    request = fake.requests[-1]
    assert request.headers["range"] == "bytes=70000-"
    assert request.headers["if-range"] == fake.etag(content)
    assert progress[0] == (70_000, 200_000)
    assert progress[-1] == (200_000, 200_000)


def test_changed_content_restarts_the_download(
    fake: FakeServer, client: VoxboxClient, tmp_path: Path
) -> None:
    content = os.urandom(50_000)
    fake.add_media(content)
    dest = tmp_path / "a.wav"
    part, etag_file = part_paths(dest)
    part.write_bytes(b"stale bytes of an older version")
    etag_file.write_text('"older"')

    download_media(client, "m1", dest)
    assert dest.read_bytes() == content
    assert fake.requests[-1].headers["if-range"] == '"older"'


def test_partial_file_without_etag_is_not_trusted(
    fake: FakeServer, client: VoxboxClient, tmp_path: Path
) -> None:
    content = os.urandom(50_000)
    fake.add_media(content)
    dest = tmp_path / "a.wav"
    part, _ = part_paths(dest)
    part.write_bytes(content[:1000])

    download_media(client, "m1", dest)
    assert dest.read_bytes() == content
    assert "range" not in fake.requests[-1].headers


def test_unsatisfiable_range_restarts(
    fake: FakeServer, client: VoxboxClient, tmp_path: Path
) -> None:
    content = os.urandom(5_000)
    fake.add_media(content)
    dest = tmp_path / "a.wav"
    part, etag_file = part_paths(dest)
    part.write_bytes(content + b"junk")  # longer than the content
    etag_file.write_text(fake.etag(content))

    download_media(client, "m1", dest)
    assert dest.read_bytes() == content
    assert [r.headers.get("range") for r in fake.requests] == ["bytes=5004-", None]


def test_download_of_unknown_media_is_an_api_error(
    fake: FakeServer, client: VoxboxClient, tmp_path: Path
) -> None:
    with pytest.raises(VoxboxAPIError) as caught:
        download_media(client, "nope", tmp_path / "x")
    assert caught.value.status == 404
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("memo.m4a", "memo.m4a"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\song.mp3", "song.mp3"),
        ("..", "fallback"),
        (".bashrc", "bashrc"),
        ("a\x00b\nc.wav", "a_b_c.wav"),
        ("what?.ogg", "what_.ogg"),
        ("NUL.txt", "fallback"),
        ("", "fallback"),
        (None, "fallback"),
        ("x" * 300 + ".flac", "x" * 195 + ".flac"),
        ("é" * 150 + ".ogg", "é" * 98 + ".ogg"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name, "fallback") == expected


def test_download_name() -> None:
    media = {"id": "m9", "kind": "audio", "filename": "Talk 1.m4a"}
    assert download_name(media, "original") == "Talk 1.m4a"
    assert download_name(media, "ogg") == "Talk 1.ogg"
    assert download_name(media, "mp3") == "Talk 1.mp3"
    assert download_name({"id": "m9", "kind": "voice", "filename": None}, "ogg") == "voice-m9.ogg"


# -- the CLI ------------------------------------------------------------------------------------


class Cli:
    """`voxbox` commands run in-process against the fake server, logged in as ann."""

    def __init__(self, fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.app = typer.Typer()
        client_commands.register(self.app)
        transport = httpx.MockTransport(fake)
        monkeypatch.setattr(
            output,
            "client_for",
            lambda c: VoxboxClient(c.url, c.token, transport=transport),
        )
        save_credentials(Credentials(url=BASE, token="tok", handle="ann"))

    def __call__(self, *args: str) -> Any:
        result = CliRunner(mix_stderr=False).invoke(self.app, list(args))
        return _Result(result.exit_code, result.stdout, result.stderr)


@dataclass(frozen=True)
class _Result:
    """A CLI run: stdout and stderr apart, and ``output`` both (as a terminal shows them)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(fake: FakeServer, conf: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(fake, monkeypatch)


def pending_entries() -> dict[str, Any]:
    file = config_dir() / "uploads.json"
    return json.loads(file.read_text()) if file.exists() else {}


def interrupt(request: httpx.Request, server: FakeServer) -> httpx.Response:
    raise KeyboardInterrupt


def test_cli_send_file(fake: FakeServer, cli: Cli, audio: Path) -> None:
    result = cli("send", "self", str(audio), "--voice")
    assert result.exit_code == 0, result.output
    (message,) = fake.messages.values()
    assert message["id"] in result.stdout
    assert message["kind"] == "voice"
    assert fake.contents[(message["media"]["id"], "original")] == audio.read_bytes()
    assert "Uploading memo.m4a" in result.output
    assert "Processing" in result.output
    assert pending_entries() == {}


def test_cli_send_resumes_after_ctrl_c(fake: FakeServer, cli: Cli, audio: Path) -> None:
    fake.faults.append(once(interrupt, on=nth_patch(3)))
    first = cli("send", "self", str(audio), "--chunk-size", "100000")
    assert first.exit_code == 130, first.output
    assert "Interrupted; run the same command again to continue." in first.output
    assert fake.messages == {}
    (entry,) = pending_entries().values()
    assert len(only_upload(fake).data) == 200_000

    second = cli("send", "self", str(audio), "--chunk-size", "100000")
    assert second.exit_code == 0, second.output
    assert "Resuming at 200.0 kB of 300.0 kB" in second.output
    (message,) = fake.messages.values()
    assert message["client_id"] == entry["client_id"]
    assert fake.contents[(message["media"]["id"], "original")] == audio.read_bytes()
    assert patch_offsets(fake) == [0, 100_000, 200_000, 200_000]
    assert pending_entries() == {}


def test_cli_send_interrupted_after_posting_does_not_post_twice(
    fake: FakeServer, cli: Cli, audio: Path
) -> None:
    def post_then_interrupt(request: httpx.Request, server: FakeServer) -> httpx.Response:
        server.handle(request)
        raise KeyboardInterrupt

    fake.faults.append(once(post_then_interrupt, on=lambda r: r.url.path.endswith("/messages")))
    first = cli("send", "self", str(audio))
    assert first.exit_code == 130, first.output
    (message,) = fake.messages.values()
    assert fake.uploads == {}  # the server consumed the upload

    second = cli("send", "self", str(audio))
    assert second.exit_code == 0, second.output
    assert message["id"] in second.stdout
    assert "sent already" in second.output
    assert len(fake.messages) == 1
    assert [r.method for r in fake.requests].count("POST") == 3  # create, post, post again
    assert pending_entries() == {}


def test_cli_send_starts_over_when_the_draft_expired(
    fake: FakeServer, cli: Cli, audio: Path
) -> None:
    fake.faults.append(once(interrupt, on=nth_patch(2)))
    assert cli("send", "self", str(audio), "--chunk-size", "100000").exit_code == 130
    fake.uploads.clear()  # expired on the server

    result = cli("send", "self", str(audio), "--chunk-size", "100000")
    assert result.exit_code == 0, result.output
    assert "Resuming" not in result.output
    assert fake.contents[(next(iter(fake.messages.values()))["media"]["id"], "original")] == (
        audio.read_bytes()
    )


def test_cli_send_refused_file_is_forgotten(fake: FakeServer, cli: Cli, tmp_path: Path) -> None:
    picture = tmp_path / "not-audio.opus"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    fake.refuse["not-audio.opus"] = problem(415, "unsupported_media", "this is a PNG image")
    result = cli("send", "self", str(picture))
    assert result.exit_code == 1
    assert "this is a PNG image" in result.output
    assert pending_entries() == {}
    assert fake.messages == {}


@pytest.mark.parametrize(
    "args",
    [
        ["send", "self"],
        ["send", "self", "FILE", "--text", "hi"],
        ["send", "self", "--voice", "-t", "x"],
    ],
)
def test_cli_send_needs_exactly_one_of_file_and_text(
    cli: Cli, audio: Path, args: list[str]
) -> None:
    result = cli(*[str(audio) if a == "FILE" else a for a in args])
    assert result.exit_code == 2, result.output


def test_cli_download(
    fake: FakeServer, cli: Cli, audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("send", "self", str(audio))
    (message,) = fake.messages.values()
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)

    result = cli("download", message["id"])
    assert result.exit_code == 0, result.output
    assert (out / "memo.m4a").read_bytes() == audio.read_bytes()
    assert result.stdout.strip() == "memo.m4a"

    again = cli("download", message["id"])
    assert again.exit_code == 1
    assert "File exists" in again.output and "--force" in again.output
    assert cli("download", message["id"], "--force").exit_code == 0

    ogg = cli("download", message["id"], "--format", "ogg", "-o", str(tmp_path))
    assert ogg.exit_code == 0, ogg.output
    assert (tmp_path / "memo.ogg").read_bytes().startswith(b"OggS")


def test_cli_download_voice_defaults_to_ogg(
    fake: FakeServer, cli: Cli, audio: Path, tmp_path: Path
) -> None:
    cli("send", "self", str(audio), "--voice")
    (message,) = fake.messages.values()
    result = cli("download", message["id"], "-o", str(tmp_path / "v.ogg"))
    assert result.exit_code == 0, result.output
    assert fake.requests[-1].url.params["format"] == "ogg"
    assert (tmp_path / "v.ogg").read_bytes().startswith(b"OggS")


def test_cli_download_message_without_media(fake: FakeServer, cli: Cli) -> None:
    fake.messages["t1"] = {"id": "t1", "kind": "text", "text": "hi", "media": None}
    result = cli("download", "t1")
    assert result.exit_code == 1
    assert "Nothing to download" in result.output


def test_cli_download_resumes_a_partial_file(fake: FakeServer, cli: Cli, tmp_path: Path) -> None:
    content = os.urandom(100_000)
    fake.add_media(content, media_id="m1")
    fake.messages["a1"] = {
        "id": "a1",
        "kind": "audio",
        "media": {"id": "m1", "kind": "audio", "filename": "talk.flac", "size": 100_000},
    }
    fake.broken_body_at = 40_000
    dest = tmp_path / "talk.flac"
    first = cli("download", "a1", "-o", str(dest))
    assert first.exit_code == 1, first.output
    assert "Connection lost" in first.output
    assert "run the same command again" in first.output.lower()

    second = cli("download", "a1", "-o", str(dest))
    assert second.exit_code == 0, second.output
    assert "Continuing the partial download" in second.output
    assert dest.read_bytes() == content
    assert fake.requests[-1].headers["range"] == "bytes=40000-"


def test_cli_progress_bar_on_a_terminal(
    fake: FakeServer, cli: Cli, audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120, highlight=False)
    monkeypatch.setattr(output, "err", terminal)
    result = cli("send", "self", str(audio), "--chunk-size", "100000")
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "Uploading memo.m4a" in shown
    assert "300.0/300.0 kB" in shown  # the bar's byte count
    assert "━" in shown
    (message,) = fake.messages.values()
    assert result.stdout.strip() == message["id"]


def test_cli_help_explains_files_resuming_and_formats(cli: Cli) -> None:
    send_help = " ".join(cli("send", "--help").output.split())
    assert "--voice" in send_help and "--text" in send_help
    assert "Run the same command again" in send_help
    assert "--chunk-size" not in send_help  # for tests only
    download_help = " ".join(cli("download", "--help").output.split())
    for word in ("--output", "--format", "original", "ogg", "mp3", "--force", "FILE.part"):
        assert word in download_help


def test_an_interrupted_send_continues_where_it_stopped_and_posts_once(
    fake: FakeServer, client: VoxboxClient, audio: Path, conf: Path
) -> None:
    def interrupt(request: httpx.Request, server: FakeServer) -> httpx.Response:
        raise KeyboardInterrupt  # Ctrl-C during the second chunk

    fake.faults.append(once(interrupt, on=nth_patch(2)))
    with pytest.raises(KeyboardInterrupt):
        send_file(client, "c1", audio, voice=True, chunk_size=100_000, resume_key="key")
    assert len(fake.messages) == 0
    assert load_pending_upload("key") is not None

    message = send_file(client, "c1", audio, voice=True, chunk_size=100_000, resume_key="key")

    # one upload, continued from the server's offset; then the message
    assert [r.method for r in fake.requests].count("POST") == 2
    assert patch_offsets(fake) == [0, 100_000, 100_000, 200_000]  # the cut PATCH, then again
    assert fake.messages[message["id"]]["media"]["size"] == audio.stat().st_size
    assert list(fake.messages) == [message["id"]]
    assert load_pending_upload("key") is None


def test_the_http_client_does_not_import_the_upload_layer() -> None:
    """client.uploads builds on client.http, never the other way round."""
    code = "import sys, voxbox.client.http; print('voxbox.client.uploads' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
