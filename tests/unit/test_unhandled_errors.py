"""An exception no route handles is logged once, with its traceback, and answered with a 500
problem (issue 9: it was logged twice)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from voxbox.api.middleware import UnhandledErrorMiddleware


async def broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the bug")


async def test_one_traceback_and_a_problem(caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=UnhandledErrorMiddleware(broken, on_disk_full=lambda: None))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with caplog.at_level(logging.ERROR):
            r = await client.get("/api/v1/chats")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal" and "the bug" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert len(logged) == 1 and "GET /api/v1/chats" in logged[0].getMessage()
