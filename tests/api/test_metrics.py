"""Operations: /healthz, /metrics (Prometheus), the OpenAPI document, request logging."""

from __future__ import annotations

import re
import time

import httpx

from support.api import ok, unique_handle

METRICS_AUTH = {"Authorization": "Bearer test-metrics"}  # VOXBOX_METRICS_TOKEN of test servers


def metric_lines(server) -> list[str]:
    r = httpx.get(f"{server.url}/metrics", headers=METRICS_AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return [line for line in r.text.splitlines() if line.startswith("voxbox_")]


def samples(lines: list[str], *words: str) -> list[tuple[str, float]]:
    """(series, value) of every voxbox_ sample whose metric name contains all `words`."""
    out = []
    for line in lines:
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0]
        if all(w in name for w in words):
            out.append((series, float(value)))
    return out


def test_metrics_are_off_without_their_token(server, make_server) -> None:
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 404
    wrong = {"Authorization": "Bearer guess"}
    assert httpx.get(f"{server.url}/metrics", headers=wrong, timeout=10).status_code == 404
    off = make_server(VOXBOX_METRICS_TOKEN=None)
    assert httpx.get(f"{off.url}/metrics", headers=METRICS_AUTH, timeout=10).status_code == 404


def test_every_response_says_nosniff_and_same_origin_referrers(server) -> None:
    for path in ["/healthz", "/api/v1/chats", "/api/v1/openapi.json", "/", "/no/such"]:
        r = httpx.get(f"{server.url}{path}", timeout=10)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "same-origin", path


def test_the_api_docs_load_nothing_from_elsewhere(server) -> None:
    page = httpx.get(f"{server.url}/api/v1/docs", timeout=10)
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert httpx.get(f"{server.url}{source}", timeout=10).status_code == 200, source


def test_healthz(server) -> None:
    r = httpx.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_metrics_cover_requests_websockets_events_and_send_latency(server, make_user) -> None:
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    async with bob.events() as ev:
        msg = alice.send(chat_id, "count me")
        await ev.next_event("message.created", where=lambda e: e["data"]["id"] == msg["id"])
        lines = metric_lines(server)

        requests = samples(lines, "http", "request")
        assert requests, "no voxbox_*http*request* metric"
        assert any("status" in s and v > 0 for s, v in requests), requests
        assert any(("route" in s or "path" in s or "handler" in s) for s, _ in requests), requests

        sockets = samples(lines, "websocket")
        assert sockets, "no voxbox_*websocket* metric"
        assert max(v for _, v in sockets) >= 1, sockets

    events = samples(lines, "event", "publish")
    assert events and max(v for _, v in events) >= 1, events

    latency = samples(lines, "send", "_bucket")
    assert latency, "no voxbox_*send*_bucket histogram"
    assert any(v >= 1 for s, v in latency if 'le="+Inf"' in s), latency


def test_openapi_document(anon) -> None:
    doc = ok(anon.get("/openapi.json"))
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert any(p.endswith("/chats") for p in paths), sorted(paths)
    assert any(p.endswith("/auth/register") for p in paths), sorted(paths)


def test_one_log_line_per_request(server, anon) -> None:
    marker = unique_handle("logged")
    anon.get(f"/users/{marker}")  # 401 without a token: still logged
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the line is written just after the response
        hits = [line for line in server.log_path.read_text().splitlines() if marker in line]
        if hits:
            break
        time.sleep(0.05)
    assert len(hits) == 1, hits
