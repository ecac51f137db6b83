"""A closed WebSocket leaves nothing behind (issue 9, item 12).

tracemalloc showed every closed socket's objects (its stream, protocol, compressor, the last
replayed page) still held after the sockets closed: the connection's tasks held their
exceptions, whose tracebacks held the handler's frame, which held the tasks. Such a cycle waits
for a full garbage collection. This test serves the app from a thread of this process, with the
cyclic collector off, so it can count what a closed socket left: nothing.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect

from support.server import free_port
from voxbox.app import create_app
from voxbox.config import load_settings
from voxbox.core.realtime import EventStream
from voxbox.metrics import WEBSOCKETS_OPEN


@pytest.fixture
def address(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        data_dir=tmp_path,
        registration="open",
        password_hash={"time_cost": 1, "memory_cost": 8, "parallelism": 1},
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def streams() -> int:
    return sum(type(o) is EventStream for o in gc.get_objects())


def test_a_closed_socket_is_freed_at_once(address: str) -> None:
    body = {"handle": "memo", "password": "password123"}
    token = httpx.post(f"http://{address}/api/v1/auth/register", json=body).json()["token"]
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            with connect(f"ws://{address}/api/v1/events") as ws:
                ws.send(json.dumps({"type": "auth", "token": token}))
                ws.send(json.dumps({"type": "resume", "after": 0}))
                while json.loads(ws.recv()).get("type") != "ready":
                    pass
                assert streams() == 1
            deadline = time.monotonic() + 10
            while WEBSOCKETS_OPEN._value.get() and time.monotonic() < deadline:
                time.sleep(0.01)  # the server's thread notices the close
            assert streams() == 0
    finally:
        gc.enable()
