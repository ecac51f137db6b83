"""Request heads without limit (issue 9, item 2): a huge header or a crowd of headers is a 431,
measured as it arrives, and other connections are served meanwhile."""

from __future__ import annotations

import json
import socket
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from support.api import assert_problem, ok


def connect(server) -> socket.socket:  # type: ignore[no-untyped-def]
    where = urlsplit(server.url)
    return socket.create_connection((where.hostname, where.port), timeout=10)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One whole response (it must carry Content-Length), read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def request(path: str, headers: list[tuple[str, str]], host: str = "voxbox") -> bytes:
    fields = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{fields}\r\n".encode()


def assert_431(sock: socket.socket) -> None:
    status, headers, body = read_response(sock)
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "header_fields_too_large"
    assert "16384 bytes and 100 fields" in problem["detail"]
    assert headers["connection"] == "close"
    assert sock.recv(1) == b""  # and the connection is closed


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Big", "a" * 20_000)],  # one header past the size
        [(f"X-N{i}", "1") for i in range(150)],  # small ones past the count
    ],
    ids=["size", "count"],
)
def test_a_head_over_the_limits_is_a_431(server, headers) -> None:  # type: ignore[no-untyped-def]
    with connect(server) as sock:
        sock.sendall(request("/healthz", headers))
        assert_431(sock)


def test_a_head_within_the_limits_is_served(server, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    headers = [(f"X-N{i}", "1") for i in range(95)]
    headers += [("Authorization", f"Bearer {user.token}"), ("Cookie", "c=" + "x" * 12_000)]
    with connect(server) as sock:
        # Two requests on one connection, the second in the same write as the first.
        sock.sendall(request("/api/v1/me", headers) * 2)
        for _ in range(2):
            status, _, body = read_response(sock)
            assert status == 200 and json.loads(body)["handle"] == user.handle


def test_an_endless_header_is_cut_off_while_others_are_served(server) -> None:  # type: ignore[no-untyped-def]
    refused = threading.Event()

    def send_endless() -> None:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: voxbox\r\nX-Endless: ")
            try:
                for _ in range(100_000):  # up to 100 MB
                    sock.sendall(b"a" * 1024)
            except OSError:  # the server answered and closed: what the test wants
                pass
            status, _, _ = read_response(sock)
            if status == 431:
                refused.set()

    sender = threading.Thread(target=send_endless)
    sender.start()
    with httpx.Client(base_url=server.url) as http:
        assert ok(http.get("/healthz")) == {"status": "ok"}
    sender.join(60)
    assert refused.is_set()


def test_a_websocket_handshake_with_too_many_headers_is_a_431(server) -> None:  # type: ignore[no-untyped-def]
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        *[(f"X-N{i}", "1") for i in range(120)],
    ]
    with connect(server) as sock:
        sock.sendall(request("/api/v1/ws", headers))
        assert_431(sock)


def test_the_limits_are_settings(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(limits__max_headers=10, limits__max_header_bytes=2048)
    with connect(srv) as sock:
        sock.sendall(request("/healthz", [(f"X-N{i}", "1") for i in range(12)]))
        status, _, body = read_response(sock)
        assert status == 431 and b"2048 bytes and 10 fields" in body
    with httpx.Client(base_url=srv.url) as http:
        assert_problem(http.get("/api/v1/me", headers={"X-Pad": "p" * 3000}), 431)
