#!/usr/bin/env python3
"""Web app benchmark (issue 6): the PWA in Debian's Chromium, driven by Playwright.

The script starts ``voxbox serve`` itself (``messaging.Server``: a temp data dir, SQLite,
registration open; one server per scenario, shared by that scenario's runs), checks that ``GET /``
answers the app, and measures in headless Chromium (``/usr/bin/chromium``, never a downloaded
one), with the fake microphone fed a looping espeak-ng speech WAV:

- release: Alice (context 1) has the direct chat with Bob open, clicks "Record voice message"
  (a click = a locked recording), waits until the "Recording time" timer shows the length
  (0:10, 1:00), then clicks "Send recording". Bob (context 2) has the chat open. Measured: from
  the click event in Alice's page (``Date.now()`` in a capturing listener) to the moment Bob's
  list "Messages" gets the new listitem holding a group "Voice message" (``Date.now()`` in a
  MutationObserver in Bob's page); both pages read the same machine clock. Each run is broken
  down from Alice's resource timing (last PATCH, POST /messages), Bob's WebSocket frame (a
  wrapper around WebSocket records when ``message.created`` arrives) and the server's access
  log (server-side duration of that PATCH and that POST). Target <= 300 ms for both lengths.
- coldload: a fresh context (session cookie only: no HTTP cache, no IndexedDB, service workers
  blocked) navigates to /; measured is ``performance.now()`` (navigation start = 0) when the
  navigation "Chats" first holds a chat link (a MutationObserver installed before any page
  script), with the navigation and resource timings that lead there. Target <= 1 s.
- size: gzipped size (Python gzip, levels 9 and 6) of every JS file index.html loads (module
  scripts and modulepreloads, and the static imports they pull in) and of all JS in
  dist/assets; sw.js and CSS listed apart. Target <= 100 KB (100,000 bytes) gzipped.
- scroll: 1,000 messages in the chat (half voice by default), posted through the API with Bearer
  tokens (httpx, concurrent). Bob is a returning user: a fresh context first opens / and catches
  up with its event log (the seq is saved in IndexedDB), then loads the chat; a
  requestAnimationFrame loop in the page scrolls the message list up by ``--scroll-step`` px per
  frame until all 1,000 are loaded and it is at the top (the app loads older pages as it goes),
  then down to the bottom. Reported: long tasks (PerformanceObserver ``longtask``, buffered)
  while opening and while scrolling (count, total, max), frame intervals (rAF deltas)
  p50/p95/max, the time until all 1,000 are loaded, the older-page requests, and how long one
  new message takes to render with all 1,000 shown. Then "replay": a new device (nothing saved)
  opens the chat by its URL, so the app resumes its WebSocket from seq 0 and the whole log
  arrives while the chat is open: time until the newest message's frame has been handled, long
  tasks, WebSocket reconnects (default 3 runs).

    .venv/bin/python benchmarks/webapp.py [--scenario all|release|coldload|size|scroll] \\
        [--runs 10] [--runs-for release60=5] [--lengths 10,60] [--json FILE]

Medians, p90, min and max over the runs are printed as tables and written as JSON to
benchmarks/results/webapp-<timestamp>.json (or --json). Every wait has a timeout, so a run
always ends; a failed run is reported and left out of the summary. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import importlib.util
import json
import math
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The browser tests' speech fixture and Chromium settings: measured as the tests run it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from e2e.support import CHROMIUM, CHROMIUM_ARGS, make_speech_wav
from messaging import Server, ServerConfig, machine_info, percentile

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}
PASSWORD = "benchmark-password"
DESKTOP = {"width": 1280, "height": 800}
SPEECH_SECONDS = 12.0
TARGETS = {
    "release": 300.0,  # ms, click "Send recording" -> Bob's bubble, every length
    "coldload": 1000.0,  # ms, navigation start -> first chat link
    "size": 100_000,  # bytes of gzipped shell JS (100 KB)
}
SCENARIOS = ("release", "coldload", "size", "scroll")
TIMEOUT_MS = 30_000
REPLAY_RUNS = 3  # default runs of the (slow) new-device replay, unless --runs-for replay=N


# --------------------------------------------------------------------------------------------
# small helpers


def summary(values: Sequence[float]) -> dict[str, float]:
    vals = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), 1),
        "p90": round(percentile(vals, 90), 1),
        "min": round(min(vals), 1),
        "max": round(max(vals), 1),
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def chromium_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=20
        ).stdout
        return out.strip()
    return "unknown"


def dist_dir() -> Path:
    """The built web app the server serves (the installed voxbox package's web/dist)."""
    spec = importlib.util.find_spec("voxbox")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent / "web" / "dist"
    return ROOT / "src/voxbox/web/dist"


def web_build() -> dict[str, Any]:
    """Which build of the web app is being measured: index.html's scripts and its mtime."""
    index = dist_dir() / "index.html"
    try:
        parser = _ShellParser()
        parser.feed(index.read_text())
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(index.stat().st_mtime))
    except OSError:
        return {}
    return {"scripts": parser.scripts, "index_mtime": when}


def clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


# --------------------------------------------------------------------------------------------
# the server and its people


@dataclass
class Person:
    handle: str
    display_name: str
    token: str


class Env:
    """One server for a scenario, the browser, and helpers to make people and chats."""

    def __init__(self, args: argparse.Namespace, browser: Browser | None, label: str) -> None:
        voxbox = args.voxbox or shutil.which("voxbox", path=str(Path(sys.executable).parent))
        config = ServerConfig(
            backend="sqlite",
            pg_admin_url="",
            redis_url=None,
            log_level="INFO",
            voxbox=voxbox or str(ROOT / ".venv/bin/voxbox"),
            keep_logs=Path(args.keep_logs) if args.keep_logs else None,
        )
        self.server = Server(config, f"webapp-{label}")
        self.browser = browser
        self.args = args
        self.http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Env:
        await self.server.start()
        self.http = httpx.AsyncClient(base_url=self.server.base, timeout=60.0)
        r = await self.http.get("/")
        if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
            raise RuntimeError(
                f"GET / answered {r.status_code} {r.headers.get('content-type')}: the web app is "
                "not built or not served (cd web && npx vite build)"
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.server.stop()

    @property
    def url(self) -> str:
        return self.server.base

    def log_lines(self) -> list[str]:
        assert self.server.tmp is not None
        with contextlib.suppress(OSError):
            return (self.server.tmp / "server.log").read_text(errors="replace").splitlines()
        return []

    async def person(self, prefix: str, display_name: str) -> Person:
        assert self.http is not None
        handle = f"{prefix}{uuid.uuid4().hex[:8]}"
        r = await self.http.post(
            f"{API}/auth/register",
            json={"handle": handle, "password": PASSWORD, "display_name": display_name},
        )
        r.raise_for_status()
        return Person(handle, display_name, r.json()["token"])

    async def direct_chat(self, a: Person, b: Person) -> str:
        assert self.http is not None
        r = await self.http.post(
            f"{API}/chats",
            json={"kind": "direct", "handle": b.handle},
            headers={"Authorization": f"Bearer {a.token}"},
        )
        r.raise_for_status()
        return str(r.json()["id"])

    async def context(self, person: Person, *, mic: bool = False) -> BrowserContext:
        """A fresh context (no cache, no storage, no service worker) logged in by the cookie."""
        assert self.browser is not None
        context = await self.browser.new_context(
            viewport=DESKTOP,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
            color_scheme="light",
            service_workers="block",
        )
        context.set_default_timeout(TIMEOUT_MS)
        if mic:
            await context.grant_permissions(["microphone"], origin=self.url)
        r = await context.request.post(
            f"{self.url}{API}/auth/login?session=cookie",
            data={"handle": person.handle, "password": PASSWORD},
            headers={"Origin": self.url},
        )
        if not r.ok:
            raise RuntimeError(f"cookie login {person.handle}: {r.status} {await r.text()}")
        await context.add_init_script(INIT_JS)
        return context


# --------------------------------------------------------------------------------------------
# in-page instrumentation (installed before any page script)

INIT_JS = r"""
(() => {
  const b = (window.__bench = { frames: [], res: [], longtasks: [], clickAt: null });
  const origin = performance.timeOrigin;
  // message.created frames: when the page's main thread gets them.
  const WS = window.WebSocket;
  b.ws = [];
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      b.ws.push({ t: Date.now(), ev: "new" });
      this.addEventListener("close", (e) =>
        b.ws.push({ t: Date.now(), ev: "close", code: e.code }));
      this.addEventListener("message", (e) => {
        if (typeof e.data !== "string" || !e.data.includes("message.created")) return;
        const t = Date.now();
        try {
          const f = JSON.parse(e.data);
          if (f.type === "message.created")
            b.frames.push({ t, id: f.data.id, kind: f.data.kind, seq: f.seq,
                            duration_ms: f.data.media ? f.data.media.duration_ms : null });
        } catch (err) {}
      });
    }
  };
  try {
    performance.setResourceTimingBufferSize(100000);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        b.res.push({ name: e.name, type: e.initiatorType, start: origin + e.startTime,
                     end: origin + e.responseEnd, st: e.startTime, re: e.responseEnd,
                     reqStart: e.requestStart, respStart: e.responseStart,
                     transfer: e.transferSize, encoded: e.encodedBodySize,
                     decoded: e.decodedBodySize });
    }).observe({ type: "resource", buffered: true });
  } catch (err) {}
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push({ start: e.startTime, dur: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch (err) {}
  // The click on "Send recording", as the app gets it.
  document.addEventListener("click", (e) => {
    const t = Date.now();
    const el = e.target instanceof Element ? e.target.closest("button") : null;
    if (el && el.getAttribute("aria-label") === "Send recording") b.clickAt = t;
  }, true);
  // The first chat link in the navigation "Chats".
  const mo = new MutationObserver(() => {
    if (b.linkAt) return;
    const a = document.querySelector('nav a[href^="/chats/"]');
    if (!a) return;
    b.linkAt = performance.now();
    mo.disconnect();
    requestAnimationFrame(() => { b.linkRaf = performance.now(); });
  });
  mo.observe(document, { childList: true, subtree: true });
})();
"""

# Bob's page, per release run: the first new listitem of "Messages" holding a "Voice message".
WATCH_BUBBLE_JS = r"""
() => {
  const b = window.__bench;
  const items = () => document.querySelectorAll('ul[aria-label="Messages"] > li');
  b.bubble = null;
  b.known = new Set([...items()].map((li) => li.id));
  if (b.bubbleObserver) b.bubbleObserver.disconnect();
  b.bubbleObserver = new MutationObserver(() => {
    if (b.bubble) return;
    const t = Date.now();
    for (const li of items()) {
      if (b.known.has(li.id)) continue;
      if (li.querySelector('[role="group"][aria-label="Voice message"]')) {
        const bubble = (b.bubble = { t, id: li.id.replace(/^m-/, "") });
        b.bubbleObserver.disconnect();
        requestAnimationFrame(() => { bubble.raf = Date.now(); });
        return;
      }
    }
  });
  b.bubbleObserver.observe(document.body, { childList: true, subtree: true });
  return b.known.size;
}
"""

# Bob's page, scroll scenario: scroll the message list up (loading older pages) until all
# `total` messages are there and it is at the top, then down to the bottom; one step per frame.
SCROLL_JS = r"""
async ({ step, total, timeoutMs }) => {
  const ul = document.querySelector('ul[aria-label="Messages"]');
  let sc = ul.parentElement;
  while (sc && !/(auto|scroll)/.test(getComputedStyle(sc).overflowY)) sc = sc.parentElement;
  if (!sc) throw new Error("no scrollable ancestor of the Messages list");
  const b = window.__bench;
  const t0 = performance.now();
  const frames = { up: [], down: [] };
  let phase = "up", last = t0, allAt = null, counts = [];
  return await new Promise((resolve) => {
    function frame(now) {
      frames[phase].push(now - last);
      last = now;
      const count = ul.childElementCount;
      if (!counts.length || counts[counts.length - 1][1] !== count) counts.push([now - t0, count]);
      if (now - t0 > timeoutMs) return done("timeout");
      if (phase === "up") {
        if (count >= total && sc.scrollTop <= 0) {
          allAt = now;
          phase = "down";
        } else {
          sc.scrollTop = Math.max(0, sc.scrollTop - step);
        }
      } else {
        if (sc.scrollHeight - sc.scrollTop - sc.clientHeight < 2) return done("ok");
        sc.scrollTop = sc.scrollTop + step;
      }
      requestAnimationFrame(frame);
    }
    function done(status) {
      const end = performance.now();
      resolve({ status, t0, allAt, end, frames, counts, count: ul.childElementCount,
                scrollHeight: sc.scrollHeight });
    }
    requestAnimationFrame((now) => { last = now; requestAnimationFrame(frame); });
  });
}
"""

# Bob's page, scroll scenario: when the listitem of message `id` shows up.
WATCH_ITEM_JS = r"""
() => {
  const b = window.__bench;
  b.item = null;
  const ul = document.querySelector('ul[aria-label="Messages"]');
  const before = new Set([...ul.children].map((li) => li.id));
  const mo = new MutationObserver(() => {
    const t = Date.now();
    for (const li of ul.children) {
      if (!before.has(li.id)) {
        b.item = { t, id: li.id.replace(/^m-/, "") };
        mo.disconnect();
        requestAnimationFrame(() => { b.item.raf = Date.now(); });
        return;
      }
    }
  });
  mo.observe(ul, { childList: true });
}
"""


async def bench(page: Page, expr: str) -> Any:
    return await page.evaluate(f"() => window.__bench{expr}")


# --------------------------------------------------------------------------------------------
# 1. release -> Bob's bubble

ACCESS = re.compile(r"^(\S+ \S+) INFO voxbox\.access: \S+ \"(\w+) (\S+)\" (\d+) ([\d.]+)ms")


def access_entries(lines: Sequence[str]) -> list[tuple[str, str, int, float]]:
    out = []
    for line in lines:
        m = ACCESS.match(line)
        if m:
            out.append((m.group(2), m.group(3), int(m.group(4)), float(m.group(5))))
    return out


async def release_run(
    env: Env, alice: Page, bob: Page, chat_id: str, seconds: int
) -> dict[str, Any]:
    log_mark = len(env.log_lines())
    await alice.evaluate("() => { window.__bench.res = []; window.__bench.clickAt = null; }")
    await bob.evaluate(WATCH_BUBBLE_JS)
    record = alice.get_by_role("button", name="Record voice message", exact=True)
    await record.click()
    timer = alice.get_by_role("timer", name="Recording time")
    await timer.wait_for()
    target = clock(seconds)
    await alice.wait_for_function(
        """(target) => {
          const t = document.querySelector('[role="timer"][aria-label="Recording time"]');
          return t && t.textContent.trim() === target;
        }""",
        arg=target,
        polling="raf",
        timeout=(seconds + 30) * 1000,
    )
    await alice.get_by_role("button", name="Send recording", exact=True).click()
    await bob.wait_for_function("() => window.__bench.bubble && window.__bench.bubble.raf")
    await record.wait_for()  # Alice's recorder is idle again: the POST was answered
    await asyncio.sleep(0.3)  # let the last resource timing entries arrive
    click = await bench(alice, ".clickAt")
    bubble = await bench(bob, ".bubble")
    frames = await bench(bob, ".frames")
    res = await bench(alice, ".res")
    if click is None:
        raise RuntimeError("the click on Send recording was not seen")
    out: dict[str, Any] = {
        "seconds": seconds,
        "total_ms": round(bubble["t"] - click, 1),
        "to_frame_ms": round(bubble["raf"] - click, 1),
        "loadavg": loadavg(),
    }
    frame = next((f for f in frames if f["id"] == bubble["id"]), None)
    if frame is not None:
        out["recorded_s"] = (frame["duration_ms"] or 0) / 1000
    after = [r for r in res if r["start"] >= click - 1]
    patches = [r for r in after if f"{API}/uploads/" in r["name"]]
    posts = [r for r in after if r["name"].endswith(f"/chats/{chat_id}/messages")]
    if patches:
        last = max(patches, key=lambda r: r["start"])
        out["click_to_patch_ms"] = round(last["start"] - click, 1)  # MediaRecorder stop
        out["patch_ms"] = round(last["end"] - last["start"], 1)
        out["requests_after_click"] = len(patches)
    if posts:
        post = posts[0]
        if patches:
            out["patch_to_post_ms"] = round(post["start"] - last["end"], 1)
        out["post_ms"] = round(post["end"] - post["start"], 1)
        if frame is not None:
            out["post_end_to_bob_frame_ms"] = round(frame["t"] - post["end"], 1)
    if frame is not None:
        out["bob_frame_to_dom_ms"] = round(bubble["t"] - frame["t"], 1)
    out["dom_to_raf_ms"] = round(bubble["raf"] - bubble["t"], 1)
    # The server's view of the same two requests (access log: duration of the handler).
    entries = access_entries(env.log_lines()[log_mark:])
    patch_log = [e for e in entries if e[0] == "PATCH" and e[1].startswith(f"{API}/uploads/")]
    post_log = [e for e in entries if e[0] == "POST" and e[1] == f"{API}/chats/{chat_id}/messages"]
    if patch_log:
        out["server_patch_ms"] = patch_log[-1][3]
        out["patches"] = len(patch_log)
    if post_log:
        out["server_post_ms"] = post_log[-1][3]
    return out


async def scenario_release(args: argparse.Namespace, browser: Browser) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with Env(args, browser, "release") as env:
        alice_p = await env.person("alice", "Alice")
        bob_p = await env.person("bob", "Bob")
        chat_id = await env.direct_chat(alice_p, bob_p)
        actx = await env.context(alice_p, mic=True)
        bctx = await env.context(bob_p)
        try:
            alice = await actx.new_page()
            bob = await bctx.new_page()
            for page in (alice, bob):
                await page.goto(f"{env.url}/chats/{chat_id}")
                await page.get_by_role("list", name="Messages").wait_for(state="attached")
            await alice.get_by_role("button", name="Record voice message", exact=True).wait_for()
            vis = await bob.evaluate("() => document.visibilityState")
            # One warm-up recording (not counted): mic, MediaRecorder, the server's first upload.
            print("release: warm-up (2 s recording, not counted)")
            await release_run(env, alice, bob, chat_id, 2)
            for seconds in args.lengths:
                key = f"release{seconds}"
                n = runs_for(args, key)
                runs: list[dict[str, Any]] = []
                for i in range(1, n + 1):
                    try:
                        r = await release_run(env, alice, bob, chat_id, seconds)
                    except Exception as exc:
                        r = {"error": repr(exc)[:300]}
                        print(f"  {key} run {i}: ERROR {r['error']}")
                        await recover_recorder(alice)
                    else:
                        print(
                            f"  {key} run {i}/{n}: {r['total_ms']:.0f} ms (to frame "
                            f"{r['to_frame_ms']:.0f}); stop {r.get('click_to_patch_ms')}, PATCH "
                            f"{r.get('patch_ms')} (srv {r.get('server_patch_ms')}), POST "
                            f"{r.get('post_ms')} (srv {r.get('server_post_ms')}), ws "
                            f"{r.get('post_end_to_bob_frame_ms')}, render "
                            f"{r.get('bob_frame_to_dom_ms')}; recorded {r.get('recorded_s')} s; "
                            f"load {r['loadavg']}"
                        )
                    runs.append(r)
                    await asyncio.sleep(1.0)
                ok = [r for r in runs if "error" not in r]
                keys = [k for k in (ok[0] if ok else {}) if k not in ("loadavg",)]
                results[key] = {
                    "runs": runs,
                    "summary": {k: summary([r.get(k, math.nan) for r in ok]) for k in keys},
                    "bob_visibility": vis,
                }
        finally:
            await actx.close()
            await bctx.close()
    return results


async def recover_recorder(alice: Page) -> None:
    """After a failed run: delete a recording left on the bar, so the next run starts idle."""
    with contextlib.suppress(Exception):
        delete = alice.get_by_role("button", name="Delete recording", exact=True)
        if await delete.count():
            await delete.click(timeout=5000)
        await alice.get_by_role("button", name="Record voice message", exact=True).wait_for(
            timeout=10_000
        )


# --------------------------------------------------------------------------------------------
# 2. cold load


async def coldload_run(env: Env, person: Person) -> dict[str, Any]:
    context = await env.context(person)
    try:
        page = await context.new_page()
        await page.goto(f"{env.url}/", wait_until="commit")
        await page.wait_for_function("() => window.__bench && window.__bench.linkRaf")
        link = page.get_by_role("navigation", name="Chats").get_by_role("link").first
        await link.wait_for()  # the contract's names, not just the DOM
        await asyncio.sleep(0.2)
        data = await page.evaluate(
            """() => {
              const n = performance.getEntriesByType("navigation")[0];
              const fcp = performance.getEntriesByName("first-contentful-paint")[0];
              return { linkAt: window.__bench.linkAt, linkRaf: window.__bench.linkRaf,
                       res: window.__bench.res, longtasks: window.__bench.longtasks,
                       nav: { responseEnd: n.responseEnd, dcl: n.domContentLoadedEventEnd,
                              load: n.loadEventEnd, transfer: n.transferSize },
                       fcp: fcp ? fcp.startTime : null };
            }"""
        )
    finally:
        await context.close()
    out: dict[str, Any] = {
        "chat_link_ms": round(data["linkAt"], 1),
        "chat_link_frame_ms": round(data["linkRaf"], 1),
        "html_ms": round(data["nav"]["responseEnd"], 1),
        "dcl_ms": round(data["nav"]["dcl"], 1),
        "fcp_ms": round(data["fcp"], 1) if data["fcp"] is not None else math.nan,
        "longtasks": len(data["longtasks"]),
        "longtask_ms": round(sum(t["dur"] for t in data["longtasks"]), 1),
    }
    js_bytes = 0
    for r in data["res"]:
        name = r["name"].split("?")[0]
        if name.endswith(".js"):
            out.setdefault("js_end_ms", round(r["re"], 1))
            out["js_end_ms"] = max(out["js_end_ms"], round(r["re"], 1))
            js_bytes += r["transfer"]
        for key, suffix in (("me", f"{API}/me"), ("chats", f"{API}/chats")):
            if name.endswith(suffix):
                # The first one (the app asks for /chats again when its WebSocket is ready).
                out[f"{key}_requests"] = out.get(f"{key}_requests", 0) + 1
                if f"{key}_start_ms" not in out or r["st"] < out[f"{key}_start_ms"]:
                    out[f"{key}_start_ms"] = round(r["st"], 1)
                    out[f"{key}_end_ms"] = round(r["re"], 1)
    out["js_transfer_bytes"] = js_bytes
    out["loadavg"] = loadavg()
    return out


async def scenario_coldload(args: argparse.Namespace, browser: Browser) -> dict[str, Any]:
    async with Env(args, browser, "coldload") as env:
        alice = await env.person("alice", "Alice")
        bob = await env.person("bob", "Bob")
        chat_id = await env.direct_chat(alice, bob)
        assert env.http is not None
        for i in range(20):  # a chat with some history and a preview
            sender = alice if i % 2 else bob
            resp = await env.http.post(
                f"{API}/chats/{chat_id}/messages",
                json={"client_id": uuid.uuid4().hex, "kind": "text", "text": f"message {i}"},
                headers={"Authorization": f"Bearer {sender.token}"},
            )
            resp.raise_for_status()
        print("coldload: warm-up load (not counted)")
        await coldload_run(env, bob)
        n = runs_for(args, "coldload")
        runs = []
        for i in range(1, n + 1):
            try:
                r = await coldload_run(env, bob)
            except Exception as exc:
                r = {"error": repr(exc)[:300]}
                print(f"  coldload run {i}: ERROR {r['error']}")
            else:
                print(
                    f"  coldload run {i}/{n}: chat link at {r['chat_link_ms']:.0f} ms (frame "
                    f"{r['chat_link_frame_ms']:.0f}); HTML {r['html_ms']:.0f}, JS "
                    f"{r.get('js_end_ms')}, DCL {r['dcl_ms']:.0f}, /me {r.get('me_start_ms')}-"
                    f"{r.get('me_end_ms')}, /chats {r.get('chats_start_ms')}-"
                    f"{r.get('chats_end_ms')}; long tasks {r['longtasks']}; load {r['loadavg']}"
                )
            runs.append(r)
        ok = [r for r in runs if "error" not in r]
        keys = [k for k in (ok[0] if ok else {}) if k != "loadavg"]
        return {
            "coldload": {
                "runs": runs,
                "summary": {k: summary([r.get(k, math.nan) for r in ok]) for k in keys},
            }
        }


# --------------------------------------------------------------------------------------------
# 3. shell JS size


class _ShellParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.css: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts.append(str(a["src"]))
        elif tag == "link" and a.get("rel") == "modulepreload" and a.get("href"):
            self.scripts.append(str(a["href"]))
        elif tag == "link" and a.get("rel") == "stylesheet" and a.get("href"):
            self.css.append(str(a["href"]))


_STATIC_IMPORT = re.compile(
    r"""(?:^|[;}\s])import\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+\.js)["']"""
)


def gz(data: bytes, level: int) -> int:
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def size_entry(path: Path, dist: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "file": str(path.relative_to(dist)),
        "bytes": len(data),
        "gzip9": gz(data, 9),
        "gzip6": gz(data, 6),
    }


def scenario_size(args: argparse.Namespace) -> dict[str, Any]:
    dist = dist_dir()
    index = dist / "index.html"
    if not index.is_file():
        raise RuntimeError(f"{index} is missing: cd web && npx vite build")
    parser = _ShellParser()
    parser.feed(index.read_text())
    # What index.html loads, and what those modules import statically (loaded at once too).
    loaded: list[Path] = []
    todo = [dist / s.lstrip("/") for s in parser.scripts]
    while todo:
        p = todo.pop(0).resolve()
        if p in loaded or not p.is_file():
            continue
        loaded.append(p)
        for spec in _STATIC_IMPORT.findall(p.read_text(errors="replace")):
            if spec.startswith(("./", "../", "/")):
                base = dist if spec.startswith("/") else p.parent
                todo.append(base / spec.lstrip("/"))
    shell = [size_entry(p, dist) for p in loaded]
    all_js = [size_entry(p, dist) for p in sorted((dist / "assets").glob("*.js"))]
    other = [
        size_entry(p, dist)
        for p in [dist / "sw.js", *(dist / c.lstrip("/") for c in parser.css)]
        if p.is_file()
    ]
    total = {k: sum(e[k] for e in shell) for k in ("bytes", "gzip9", "gzip6")}
    total_all = {k: sum(e[k] for e in all_js) for k in ("bytes", "gzip9", "gzip6")}
    out = {
        "dist": str(dist),
        "built": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(index.stat().st_mtime)),
        "shell_js": shell,
        "shell_total": total,
        "assets_js": all_js,
        "assets_total": total_all,
        "other": other,
        "target_bytes": TARGETS["size"],
        "met": total["gzip9"] <= TARGETS["size"],
    }
    return {"size": out}


# --------------------------------------------------------------------------------------------
# 4. 1,000 messages: scroll


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def upload_voice(http: httpx.AsyncClient, person: Person, wav: bytes) -> str:
    """A voice media of the person's (tus: create with length, one PATCH, finish): its id."""
    auth = {"Authorization": f"Bearer {person.token}"}
    r = await http.post(
        f"{API}/uploads",
        headers={
            **auth,
            **TUS,
            "Upload-Length": str(len(wav)),
            "Upload-Metadata": tus_metadata(
                filename="note.wav", content_type="audio/wav", kind="voice"
            ),
        },
    )
    r.raise_for_status()
    location = r.headers["location"]
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    r = await http.patch(
        location,
        content=wav,
        headers={
            **auth,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    r.raise_for_status()
    r = await http.post(f"{API}/uploads/{upload_id}/finish", json={"kind": "voice"}, headers=auth)
    r.raise_for_status()
    return str(r.json()["id"])


async def fill_chat(
    env: Env, chat_id: str, people: list[Person], count: int, voice_share: float, wav: bytes
) -> float:
    assert env.http is not None
    media = {p.handle: await upload_voice(env.http, p, wav) for p in people}
    sem = asyncio.Semaphore(8)
    texts = [
        "On my way, see you in ten minutes.",
        "Did you hear the voice note I sent earlier? Let me know what you think.",
        "ok",
        "The quick brown fox jumps over the lazy dog. " * 3,
    ]

    async def post(i: int) -> None:
        p = people[(i // 3) % len(people)]  # runs of three from the same person
        if int((i + 1) * voice_share) > int(i * voice_share):
            body: dict[str, Any] = {"kind": "voice", "media_id": media[p.handle]}
        else:
            body = {"kind": "text", "text": f"{texts[i % len(texts)]} #{i}"}
        body["client_id"] = f"bench-{i}-{uuid.uuid4().hex[:8]}"
        async with sem:
            for attempt in range(3):
                r = await env.http.post(  # type: ignore[union-attr]
                    f"{API}/chats/{chat_id}/messages",
                    json=body,
                    headers={"Authorization": f"Bearer {p.token}"},
                )
                if r.status_code < 500 and r.status_code != 429:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            r.raise_for_status()

    started = time.monotonic()
    # In order of i in batches, so created_at follows i closely (order does not matter much).
    await asyncio.gather(*(post(i) for i in range(count)))
    return time.monotonic() - started


READ_SEQ_JS = r"""
async () => await new Promise((resolve) => {
  const req = indexedDB.open("voxbox");
  req.onerror = () => resolve(null);
  req.onsuccess = () => {
    try {
      const get = req.result.transaction("kv").objectStore("kv").get("seq");
      get.onsuccess = () => { resolve(get.result ?? null); req.result.close(); };
      get.onerror = () => resolve(null);
    } catch (err) { resolve(null); }
  };
})
"""


async def last_seq(env: Env, person: Person) -> int:
    """The newest seq in the person's event log (long-poll API, no waiting)."""
    assert env.http is not None
    seq = 0
    for _ in range(1000):
        r = await env.http.get(
            f"{API}/events",
            params={"after": seq, "timeout": 0},
            headers={"Authorization": f"Bearer {person.token}"},
        )
        r.raise_for_status()
        body = r.json()
        if not body["events"]:
            return int(body["seq"])
        seq = int(body["seq"])
    return seq


async def caught_up_context(
    env: Env, person: Person, timeout_s: float
) -> tuple[BrowserContext, float]:
    """A returning user's context: it opened the app at / once and caught up with its event log
    (the seq is saved in IndexedDB), so the next load resumes from there. Returns the context and
    how long that first catch-up took, s."""
    target = await last_seq(env, person)
    context = await env.context(person)
    page = await context.new_page()
    started = time.monotonic()
    await page.goto(f"{env.url}/")
    deadline = started + timeout_s
    while True:
        seq = await page.evaluate(READ_SEQ_JS)
        if isinstance(seq, int) and seq >= target:
            break
        if time.monotonic() > deadline:
            await context.close()
            raise TimeoutError(f"not caught up after {timeout_s:.0f} s (seq {seq} of {target})")
        await asyncio.sleep(0.25)
    took = time.monotonic() - started
    await page.close()
    return context, took


async def replay_run(
    env: Env, bob_p: Person, chat_id: str, total: int, args: argparse.Namespace
) -> dict[str, Any]:
    """A new device (nothing saved) opens the chat by its URL. Done when the chat's newest
    message is shown (its listitem is in the DOM). The app starts such a device at the event
    log's end (a reset), so no replay of the log should be seen: ws_message_frames counts any."""
    assert env.http is not None
    r = await env.http.get(
        f"{API}/chats/{chat_id}/messages",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {bob_p.token}"},
    )
    r.raise_for_status()
    newest = r.json()["messages"][-1]["id"]
    context = await env.context(bob_p)
    try:
        page = await context.new_page()
        await page.goto(f"{env.url}/chats/{chat_id}")
        await page.wait_for_function(
            """(id) => document.getElementById('m-' + id)
                       && (window.__shownAt ??= performance.timeOrigin + performance.now())""",
            arg=newest,
            polling="raf",
            timeout=args.scroll_timeout * 1000,
        )
        await asyncio.sleep(1.0)
        data = await page.evaluate(
            """(id) => ({ origin: performance.timeOrigin, longtasks: window.__bench.longtasks,
                   last: window.__shownAt,
                   frames: window.__bench.frames.length, ws: window.__bench.ws,
                   shown: document.querySelector('ul[aria-label="Messages"]').childElementCount,
                   res: window.__bench.res })""",
            newest,
        )
    finally:
        await context.close()
    done = data["last"] - data["origin"]  # ms since navigation start
    tasks = [t for t in data["longtasks"] if t["start"] <= done]
    pages = [r for r in data["res"] if f"/chats/{chat_id}/messages" in r["name"]]
    return {
        "replayed_s": round(done / 1000, 2),
        "ws_message_frames": data["frames"],
        "ws_connections": sum(1 for w in data["ws"] if w["ev"] == "new"),
        "ws_close_codes": [w.get("code") for w in data["ws"] if w["ev"] == "close"],
        "shown": data["shown"],
        "message_requests": len(pages),
        "longtasks": len(tasks),
        "longtask_total_ms": round(sum(t["dur"] for t in tasks), 1),
        "longtask_max_ms": round(max((t["dur"] for t in tasks), default=0), 1),
        "busy_share": round(sum(t["dur"] for t in tasks) / done, 2) if done > 0 else math.nan,
        "loadavg": loadavg(),
    }


async def scroll_run(
    env: Env, bob_p: Person, alice_p: Person, chat_id: str, total: int, args: argparse.Namespace
) -> dict[str, Any]:
    context, catch_up_s = await caught_up_context(env, bob_p, args.scroll_timeout)
    try:
        page = await context.new_page()
        await page.goto(f"{env.url}/chats/{chat_id}")
        messages = page.get_by_role("list", name="Messages")
        await messages.get_by_role("listitem").first.wait_for()
        await asyncio.sleep(1.0)  # the open settles (read receipt, starred, IndexedDB save)
        opened = await page.evaluate(
            "() => ({ n: document.querySelector('ul[aria-label=\"Messages\"]').childElementCount,"
            " longtasks: window.__bench.longtasks.slice(), now: performance.now() })"
        )
        result = await page.evaluate(
            SCROLL_JS,
            {"step": args.scroll_step, "total": total, "timeoutMs": args.scroll_timeout * 1000},
        )
        longtasks = await bench(page, ".longtasks")
        res = await bench(page, ".res")
        # One new message with everything shown: Bob's frame -> its listitem.
        await page.evaluate(WATCH_ITEM_JS)
        assert env.http is not None
        r = await env.http.post(
            f"{API}/chats/{chat_id}/messages",
            json={"client_id": uuid.uuid4().hex, "kind": "text", "text": "one more"},
            headers={"Authorization": f"Bearer {alice_p.token}"},
        )
        r.raise_for_status()
        new_id = r.json()["id"]
        await page.wait_for_function("() => window.__bench.item && window.__bench.item.raf")
        item = await bench(page, ".item")
        frames = await bench(page, ".frames")
        await asyncio.sleep(1.0)
        longtasks_after = await bench(page, ".longtasks")
    finally:
        await context.close()
    t0, all_at, end = result["t0"], result["allAt"], result["end"]
    scroll_tasks = [t for t in longtasks if t0 <= t["start"] <= end]
    open_tasks = [t for t in opened["longtasks"]]
    up_tasks = [t for t in scroll_tasks if all_at is None or t["start"] < all_at]
    down_tasks = [t for t in scroll_tasks if all_at is not None and t["start"] >= all_at]
    intervals = result["frames"]["up"][1:] + result["frames"]["down"]
    pages = [r for r in res if f"/chats/{chat_id}/messages" in r["name"] and "before=" in r["name"]]
    frame = next((f for f in frames if f["id"] == new_id), None)
    new_tasks = [t for t in longtasks_after if t["start"] > end]
    return {
        "status": result["status"],
        "loaded": result["count"],
        "catch_up_at_root_s": round(catch_up_s, 2),
        "open_items": opened["n"],
        "open_longtasks": len(open_tasks),
        "open_longtask_max_ms": round(max((t["dur"] for t in open_tasks), default=0), 1),
        "all_loaded_s": round((all_at - t0) / 1000, 2) if all_at else math.nan,
        "scroll_s": round((end - t0) / 1000, 2),
        "longtasks": len(scroll_tasks),
        "longtask_total_ms": round(sum(t["dur"] for t in scroll_tasks), 1),
        "longtask_max_ms": round(max((t["dur"] for t in scroll_tasks), default=0), 1),
        "longtasks_up": len(up_tasks),
        "longtasks_down": len(down_tasks),
        "longtask_down_max_ms": round(max((t["dur"] for t in down_tasks), default=0), 1),
        "frame_p50_ms": round(percentile(intervals, 50), 1),
        "frame_p95_ms": round(percentile(intervals, 95), 1),
        "frame_max_ms": round(max(intervals), 1) if intervals else math.nan,
        "frames_over_50ms": sum(1 for f in intervals if f > 50),
        "frames": len(intervals),
        "frame_down_p95_ms": round(percentile(result["frames"]["down"], 95), 1),
        "frame_down_max_ms": round(max(result["frames"]["down"], default=math.nan), 1),
        "older_pages": len(pages),
        "older_page_ms": round(statistics.median([r["re"] - r["st"] for r in pages]), 1)
        if pages
        else math.nan,
        "scroll_height_px": result["scrollHeight"],
        "new_msg_frame_to_dom_ms": round(item["t"] - frame["t"], 1) if frame else math.nan,
        "new_msg_longtasks": len(new_tasks),
        "new_msg_longtask_max_ms": round(max((t["dur"] for t in new_tasks), default=0), 1),
        "loadavg": loadavg(),
    }


async def scenario_scroll(args: argparse.Namespace, browser: Browser, wav: bytes) -> dict[str, Any]:
    async with Env(args, browser, "scroll") as env:
        alice = await env.person("alice", "Alice")
        bob = await env.person("bob", "Bob")
        chat_id = await env.direct_chat(alice, bob)
        took = await fill_chat(env, chat_id, [alice, bob], args.messages, args.voice_share, wav)
        print(f"scroll: {args.messages} messages posted in {took:.1f} s")
        total = args.messages
        out: dict[str, Any] = {}
        n = runs_for(args, "scroll")
        runs = []
        for i in range(1, n + 1):
            try:
                r = await scroll_run(env, bob, alice, chat_id, total, args)
            except Exception as exc:
                r = {"error": repr(exc)[:300]}
                print(f"  scroll run {i}: ERROR {r['error']}")
            else:
                total += 1  # each run posts one more message at the end
                print(
                    f"  scroll run {i}/{n}: {r['status']}, {r['loaded']} loaded after "
                    f"{r['all_loaded_s']} s; long tasks {r['longtasks']} (total "
                    f"{r['longtask_total_ms']} ms, max {r['longtask_max_ms']}; down "
                    f"{r['longtasks_down']}); frames p50 {r['frame_p50_ms']} / p95 "
                    f"{r['frame_p95_ms']} / max {r['frame_max_ms']} ms; {r['older_pages']} older "
                    f"pages ({r['older_page_ms']} ms); new message render "
                    f"{r['new_msg_frame_to_dom_ms']} ms (long task max "
                    f"{r['new_msg_longtask_max_ms']}); catch-up at / {r['catch_up_at_root_s']} s; "
                    f"load {r['loadavg']}"
                )
            runs.append(r)
        ok = [r for r in runs if "error" not in r]
        keys = [k for k in (ok[0] if ok else {}) if k not in ("loadavg", "status")]
        out["scroll"] = {
            "messages": args.messages,
            "voice_share": args.voice_share,
            "scroll_step_px": args.scroll_step,
            "post_s": round(took, 1),
            "runs": runs,
            "summary": {k: summary([r.get(k, math.nan) for r in ok]) for k in keys},
        }
        n = runs_for(args, "replay")
        runs = []
        for i in range(1, n + 1):
            try:
                r = await replay_run(env, bob, chat_id, total, args)
            except Exception as exc:
                r = {"error": repr(exc)[:300]}
                print(f"  replay run {i}: ERROR {r['error']}")
            else:
                print(
                    f"  replay run {i}/{n}: newest of {total} shown after {r['replayed_s']} s; "
                    f"{r['ws_message_frames']} message.created frames on "
                    f"{r['ws_connections']} socket(s) (closed: {r['ws_close_codes']}), "
                    f"{r['shown']} shown, {r['message_requests']} page requests; long tasks "
                    f"{r['longtasks']} (total {r['longtask_total_ms']} ms, max "
                    f"{r['longtask_max_ms']}; busy {r['busy_share']:.0%}); load {r['loadavg']}"
                )
            runs.append(r)
        ok = [r for r in runs if "error" not in r]
        keys = [k for k in (ok[0] if ok else {}) if k not in ("loadavg", "ws_close_codes")]
        out["replay"] = {
            "messages": total,
            "runs": runs,
            "summary": {k: summary([r.get(k, math.nan) for r in ok]) for k in keys},
        }
        return out


# --------------------------------------------------------------------------------------------
# report


def runs_for(args: argparse.Namespace, key: str) -> int:
    default = min(args.runs, REPLAY_RUNS) if key == "replay" else args.runs
    return int(args.runs_for.get(key, args.runs_for.get(key.rstrip("0123456789"), default)))


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:,.1f}"
    return str(v)


def print_summary(title: str, summ: dict[str, dict[str, float]], keys: Sequence[str]) -> None:
    print(f"\n{title}")
    header = ["", "n", "median", "p90", "min", "max"]
    rows = [
        [k, *(fmt(summ[k].get(c, math.nan)) for c in ("n", "median", "p90", "min", "max"))]
        for k in keys
        if k in summ and summ[k].get("n")
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )


RELEASE_KEYS = [
    "total_ms",
    "to_frame_ms",
    "click_to_patch_ms",
    "patch_ms",
    "server_patch_ms",
    "patch_to_post_ms",
    "post_ms",
    "server_post_ms",
    "post_end_to_bob_frame_ms",
    "bob_frame_to_dom_ms",
    "dom_to_raf_ms",
    "recorded_s",
    "patches",
]
COLD_KEYS = [
    "chat_link_ms",
    "chat_link_frame_ms",
    "html_ms",
    "js_end_ms",
    "dcl_ms",
    "fcp_ms",
    "me_start_ms",
    "me_end_ms",
    "chats_start_ms",
    "chats_end_ms",
    "chats_requests",
    "longtasks",
    "longtask_ms",
    "js_transfer_bytes",
]
SCROLL_KEYS = [
    "all_loaded_s",
    "scroll_s",
    "longtasks",
    "longtask_total_ms",
    "longtask_max_ms",
    "longtasks_up",
    "longtasks_down",
    "longtask_down_max_ms",
    "frame_p50_ms",
    "frame_p95_ms",
    "frame_max_ms",
    "frames_over_50ms",
    "frames",
    "frame_down_p95_ms",
    "frame_down_max_ms",
    "older_pages",
    "older_page_ms",
    "open_items",
    "open_longtasks",
    "open_longtask_max_ms",
    "new_msg_frame_to_dom_ms",
    "new_msg_longtasks",
    "new_msg_longtask_max_ms",
    "loaded",
    "catch_up_at_root_s",
]
REPLAY_KEYS = [
    "replayed_s",
    "ws_message_frames",
    "ws_connections",
    "shown",
    "message_requests",
    "longtasks",
    "longtask_total_ms",
    "longtask_max_ms",
    "busy_share",
]


def report(results: dict[str, Any]) -> None:
    print("\n" + "=" * 78)
    for key, entry in results.items():
        if key.startswith("release"):
            med = entry["summary"].get("total_ms", {}).get("median", math.nan)
            verdict = "met" if med <= TARGETS["release"] else "MISSED"
            print_summary(
                f"{key}: click 'Send recording' -> Bob's bubble, ms "
                f"(target <= {TARGETS['release']:.0f}: {verdict})",
                entry["summary"],
                RELEASE_KEYS,
            )
        elif key == "coldload":
            med = entry["summary"].get("chat_link_ms", {}).get("median", math.nan)
            verdict = "met" if med <= TARGETS["coldload"] else "MISSED"
            print_summary(
                f"coldload: navigation start -> first chat link, ms "
                f"(target <= {TARGETS['coldload']:.0f}: {verdict})",
                entry["summary"],
                COLD_KEYS,
            )
        elif key == "scroll":
            print_summary(
                f"scroll: {entry['messages']} messages ({entry['voice_share']:.0%} voice), "
                f"{entry['scroll_step_px']} px per frame",
                entry["summary"],
                SCROLL_KEYS,
            )
        elif key == "replay":
            print_summary(
                f"replay: a new device opens the chat of {entry['messages']} messages by its URL",
                entry["summary"],
                REPLAY_KEYS,
            )
        elif key == "size":
            print(f"\nsize: shell JS (index.html and its static imports), built {entry['built']}")
            for e in entry["shell_js"]:
                sizes = f"gzip -9 {e['gzip9']:,} B, -6 {e['gzip6']:,} B"
                print(f"  {e['file']}: {e['bytes']:,} B, {sizes}")
            t = entry["shell_total"]
            verdict = "met" if entry["met"] else "MISSED"
            print(
                f"  total: {t['bytes']:,} B, gzip -9 {t['gzip9']:,} B, -6 {t['gzip6']:,} B "
                f"(target <= {TARGETS['size']:,} B: {verdict})"
            )
            a = entry["assets_total"]
            print(
                f"  all JS in assets/: {a['bytes']:,} B, gzip -9 {a['gzip9']:,}, -6 {a['gzip6']:,}"
            )
            for e in entry["other"]:
                print(f"  ({e['file']}: {e['bytes']:,} B, gzip -9 {e['gzip9']:,} B)")


async def main_async(args: argparse.Namespace) -> int:
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    info = machine_info()
    info["chromium"] = chromium_version()
    info["loadavg_start"] = loadavg()
    info["web_build_start"] = web_build()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['mem_gib']} GiB; "
        f"{info['chromium']}; load {info['loadavg_start']}"
    )
    results: dict[str, Any] = {}
    failed = False
    if "size" in scenarios:
        results.update(scenario_size(args))
    browser_scenarios = [s for s in scenarios if s != "size"]
    if browser_scenarios:
        tmp = Path(tempfile.mkdtemp(prefix="voxbox-webapp-bench-"))
        try:
            wav_path = tmp / "speech.wav"
            make_speech_wav(wav_path, SPEECH_SECONDS)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav_path}"],
                )
                try:
                    for scenario in browser_scenarios:
                        started = time.monotonic()
                        try:
                            if scenario == "release":
                                results.update(await scenario_release(args, browser))
                            elif scenario == "coldload":
                                results.update(await scenario_coldload(args, browser))
                            elif scenario == "scroll":
                                wav = wav_path.read_bytes()[: 44 + 48000 * 2 * 5]  # ~5 s
                                wav = fix_wav_length(wav)
                                results.update(await scenario_scroll(args, browser, wav))
                        except Exception as exc:
                            failed = True
                            results[scenario] = {"error": repr(exc)[:1000]}
                            print(f"{scenario}: ERROR {exc!r}")
                        print(f"{scenario}: {time.monotonic() - started:.0f} s")
                finally:
                    await browser.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report({k: v for k, v in results.items() if "error" not in v})
    info["loadavg_end"] = loadavg()
    info["web_build_end"] = web_build()
    out = (
        Path(args.json)
        if args.json
        else (ROOT / "benchmarks/results" / f"webapp-{time.strftime('%Y%m%d-%H%M%S')}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    report_json = {
        "machine": info,
        "config": {k: v for k, v in vars(args).items()},
        "targets": TARGETS,
        "results": results,
    }
    out.write_text(json.dumps(report_json, indent=2, default=str) + "\n")
    print(f"\nwrote {out}")
    return 1 if failed else 0


def fix_wav_length(wav: bytes) -> bytes:
    """A WAV cut from a longer one, with its RIFF and data sizes fixed (canonical 44-byte
    header, as sox writes it)."""
    data_len = len(wav) - 44
    return (
        wav[:4]
        + struct.pack("<I", 36 + data_len)
        + wav[8:40]
        + struct.pack("<I", data_len)
        + wav[44:]
    )


def parse_runs_for(values: list[str]) -> dict[str, int]:
    out = {}
    for v in values:
        key, _, n = v.partition("=")
        if not n.isdigit():
            raise argparse.ArgumentTypeError(f"--runs-for {v!r}: want KEY=N (N = 0 skips it)")
        out[key.strip()] = int(n)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    p.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    p.add_argument(
        "--runs-for",
        action="append",
        default=[],
        metavar="KEY=N",
        help="runs for one case: release10, release60 (release<seconds>), release (every "
        "length), coldload, scroll, replay (default min(runs, 3)); 0 skips;\n"
        "e.g. --runs-for release60=5",
    )
    p.add_argument(
        "--lengths",
        default="10,60",
        help="recording lengths for release, whole seconds (default 10,60)",
    )
    p.add_argument("--messages", type=int, default=1000, help="messages in the scroll chat")
    p.add_argument(
        "--voice-share", type=float, default=0.5, help="share of voice messages (scroll)"
    )
    p.add_argument("--scroll-step", type=int, default=100, help="px scrolled per frame")
    p.add_argument("--scroll-timeout", type=float, default=180, help="per scroll run, s")
    p.add_argument("--json", metavar="FILE", help="default benchmarks/results/webapp-<time>.json")
    p.add_argument("--keep-logs", metavar="DIR", help="copy each scenario's server log here")
    p.add_argument("--voxbox", help="the voxbox executable (default: the one next to python)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs >= 1")
    try:
        args.runs_for = parse_runs_for(args.runs_for)
        args.lengths = [int(x) for x in str(args.lengths).split(",") if x.strip()]
    except (argparse.ArgumentTypeError, ValueError) as e:
        p.error(str(e))
    if not 0 <= args.voice_share <= 1:
        p.error("--voice-share in 0..1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
