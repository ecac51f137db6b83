"""Browser-side helpers: people with a logged-in browser, UI.md locators, clocks, screenshots, axe.

Every locator goes by UI.md's accessible names (`button(page, "Send")`, `role(page, "dialog",
"Send audio")`), matched as UI.md says: the whole name, ignoring case.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from e2e.support import (
    PHONE,
    SIZES,
    Size,
    begins_with,
    blocking_violations,
    eventually,
    format_violations,
    named,
    parse_clock,
    unique_text,
)
from support.api import User, ok
from support.server import REPO_ROOT, ServerProcess

SCREENSHOT_DIR = Path(os.environ.get("E2E_SCREENSHOT_DIR") or REPO_ROOT / "docs" / "screenshots")
FAILURE_DIR = Path(os.environ.get("E2E_FAILURE_DIR") or "/tmp/voxbox-e2e-failures")


# --- locators by UI.md names ----------------------------------------------------------------------
Scope = Page | Locator


def role(scope: Scope, role_name: str, name: str | re.Pattern[str] | None = None) -> Locator:
    if name is None:
        return scope.get_by_role(role_name)  # type: ignore[arg-type]
    pattern = named(name) if isinstance(name, str) else name
    return scope.get_by_role(role_name, name=pattern)  # type: ignore[arg-type]


def button(scope: Scope, name: str | re.Pattern[str]) -> Locator:
    return role(scope, "button", name)


def field(scope: Scope, label: str) -> Locator:
    """A form control by its label ("Handle", "Password", "Audio file" ...)."""
    return scope.get_by_label(named(label))


def alerts(scope: Scope) -> Locator:
    """role=alert elements that say something (an empty live region waiting for text is not one)."""
    return scope.get_by_role("alert").filter(has_text=re.compile(r"\w"))


def status_icon(message: Locator, name: str) -> Locator:
    """A sent message's status icon: "Sent", "Delivered", "Read" or "Played"."""
    return message.get_by_label(named(name)).or_(message.get_by_role("img", name=named(name))).first


def center(locator: Locator) -> tuple[float, float]:
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None, f"{locator} has no box"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


# --- a person with a browser ----------------------------------------------------------------------
@dataclass
class Person:
    """One person: an account (`user`, with a bearer-token API client) and a browser context."""

    name: str
    user: User | None
    server: ServerProcess
    context: BrowserContext
    page: Page
    size: Size
    log: deque[str] = dataclass_field(default_factory=lambda: deque(maxlen=400))

    # --- where things are ------------------------------------------------------------------
    @property
    def api(self) -> User:
        assert self.user is not None, f"{self.name} has no API account"
        return self.user

    @property
    def chat_list(self) -> Locator:
        return role(self.page, "navigation", "Chats")

    def chat_link(self, title: str) -> Locator:
        return self.chat_list.get_by_role("link", name=begins_with(title))

    @property
    def messages(self) -> Locator:
        return role(self.page, "list", "Messages")

    def items(self, group: str | re.Pattern[str] = "Voice message") -> Locator:
        """The messages holding a group ("Voice message", "Audio message", or a pattern)."""
        pattern = named(group) if isinstance(group, str) else group
        inner = self.page.get_by_role("group", name=pattern)
        return self.messages.get_by_role("listitem").filter(has=inner)

    def text_items(self, text: str) -> Locator:
        return self.messages.get_by_role("listitem").filter(has_text=text)

    @property
    def composer(self) -> Locator:
        return role(self.page, "textbox", "Message")

    @property
    def record_button(self) -> Locator:
        return button(self.page, "Record voice message")

    @property
    def recording_time(self) -> Locator:
        return role(self.page, "timer", "Recording time")

    @property
    def offline_status(self) -> Locator:
        return self.page.get_by_role("status").filter(has_text=re.compile("offline", re.I))

    # --- doing things ------------------------------------------------------------------------
    def goto(self, path: str = "/") -> None:
        self.page.goto(self.server.url + path)

    def open_chat_list(self) -> None:
        self.goto("/")
        expect(self.chat_list).to_be_visible()

    def open_chat(self, chat_id: str, title: str) -> None:
        """The chat by its deep link; ready when its heading and the composer show."""
        self.goto(f"/chats/{chat_id}")
        self.wait_for_chat(title)

    def wait_for_chat(self, title: str) -> None:
        expect(role(self.page, "heading", title).first).to_be_visible()
        expect(self.composer).to_be_visible()

    def press(self, locator: Locator) -> None:
        """A tap on the phone, a click on the desktop."""
        if self.size.touch:
            locator.tap()
        else:
            locator.click()

    def send_text(self, text: str) -> None:
        """Types into "Message" and presses "Send"; the message shows in the list at once."""
        self.composer.fill(text)
        self.press(button(self.page, "Send"))
        expect(self.text_items(text)).to_have_count(1)
        expect(self.composer).to_have_value("")

    def message_actions(self, message: Locator) -> Locator:
        """Opens a message's "Message actions" menu and returns the menu."""
        message.hover()
        self.press(button(message, "Message actions"))
        menu = role(self.page, "menu")
        expect(menu).to_be_visible()
        return menu

    def new_page(self) -> Page:
        """A new tab in the same browser profile (same session cookie)."""
        self.page = self.context.new_page()
        return self.page

    def open_uploads(self) -> list[dict[str, Any]]:
        """GET /uploads?state=open: this person's unfinished uploads (voice drafts)."""
        return ok(self.api.http.get("/uploads", params={"state": "open"}))["uploads"]

    # --- diagnostics for a failed test ---------------------------------------------------------
    def diagnostics(self, test_name: str) -> list[tuple[str, str]]:
        sections = [(f"{self.name}'s browser console", "\n".join(self.log) or "(nothing logged)")]
        for n, page in enumerate(self.context.pages):
            try:
                snapshot = page.locator("body").aria_snapshot(timeout=2000)
            except Exception as e:  # the page may be gone or stuck; the report must still come
                snapshot = f"(no snapshot: {e})"
            if len(snapshot) > 6000:
                snapshot = snapshot[:6000] + "\n..."
            shot = FAILURE_DIR / f"{test_name}-{self.name}-{n}.png"
            try:
                FAILURE_DIR.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=shot, timeout=3000)
                where = f"screenshot: {shot}"
            except Exception as e:
                where = f"(no screenshot: {e})"
            sections.append(
                (f"{self.name}'s page {n} ({self.size.name})", f"{page.url}\n{where}\n{snapshot}")
            )
        return sections


def record_browser_log(context: BrowserContext, log: deque[str]) -> None:
    """Console messages, page errors, failed requests and API errors, for failure reports."""

    def on_console(msg: Any) -> None:
        loc = msg.location or {}
        log.append(f"[{msg.type}] {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            log.append(f"[http {response.status}] {response.request.method} {response.url}")

    context.on("console", on_console)
    context.on("weberror", lambda err: log.append(f"[pageerror] {err.error}"))
    context.on(
        "requestfailed",
        lambda req: log.append(f"[requestfailed] {req.method} {req.url}: {req.failure}"),
    )
    context.on("response", on_response)


# --- logging in -----------------------------------------------------------------------------------
def login_with_cookie(context: BrowserContext, server: ServerProcess, handle: str, pw: str) -> None:
    """The fast way: POST /auth/login?session=cookie from the context, which keeps the cookie."""
    r = context.request.post(
        f"{server.api_url}/auth/login?session=cookie",
        data={"handle": handle, "password": pw},
        headers={"Origin": server.url},
    )
    assert r.ok, f"cookie login for {handle}: {r.status} {r.text()}"
    cookies = context.cookies(server.url)
    assert any(c.get("httpOnly") for c in cookies), f"login set no HttpOnly cookie: {cookies}"


def login_through_ui(page: Page, server: ServerProcess, handle: str, password: str) -> None:
    """As a person does: the sign-in form, "Handle", "Password", "Log in"."""
    page.goto(server.url + "/")
    field(page, "Handle").fill(handle)
    field(page, "Password").fill(password)
    button(page, "Log in").click()
    expect(role(page, "navigation", "Chats")).to_be_visible()


# --- a finger on a touch screen ---------------------------------------------------------------
class Finger:
    """One finger on a phone page (Chromium's touch events over CDP): press, slide, lift.

    Playwright can only tap; holding and sliding, as on a phone's mic button, needs this.
    """

    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.x = 0.0
        self.y = 0.0

    def _send(self, kind: str, points: list[dict[str, float]]) -> None:
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    def down(self, x: float, y: float) -> None:
        self.x, self.y = x, y
        self._send("touchStart", [{"x": x, "y": y}])

    def slide(self, dx: float, dy: float, steps: int = 10) -> None:
        x0, y0 = self.x, self.y
        for i in range(1, steps + 1):
            self.x, self.y = x0 + dx * i / steps, y0 + dy * i / steps
            self._send("touchMove", [{"x": self.x, "y": self.y}])

    def up(self) -> None:
        self._send("touchEnd", [])


# --- waiting on things a person sees --------------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    seconds: int
    at: float  # time.monotonic() when the test saw the clock turn to `seconds`


_CLOCK_REACHED = r"""
([el, want]) => {
  if (!el.isConnected) return "gone";
  const m = (el.textContent || "").match(/(\d+):(\d\d)/);
  return m && Number(m[1]) * 60 + Number(m[2]) >= want ? m[0] : false;
}
"""


def _shown_seconds(text: str | None) -> int | None:
    m = re.search(r"(\d+):(\d\d)", text or "")
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def wait_for_clock(timer: Locator, seconds: int, timeout_ms: float = 15_000) -> int:
    """Waits until an "m:ss" timer shows at least `seconds`, looking in the page every 25 ms.

    Returns the seconds it shows then.
    """
    for _ in range(3):
        handle = timer.element_handle(timeout=timeout_ms)
        assert handle is not None
        result = timer.page.wait_for_function(
            _CLOCK_REACHED, arg=[handle, seconds], polling=25, timeout=timeout_ms
        )
        value = result.json_value()
        if value != "gone":
            return parse_clock(value)
    raise AssertionError("the timer kept being replaced; it never showed a steady clock")


def catch_tick(timer: Locator, seconds: int, timeout_ms: float = 15_000) -> Tick:
    """Waits for an "m:ss" timer to turn to `seconds` and says when the test saw it turn.

    Acting right after it, the caller knows how much was recorded: `seconds` plus the time since
    `Tick.at`, give or take the 25 ms between looks. Fails when the timer was already past
    `seconds` (the turn was missed) or skipped it.
    """
    shown = _shown_seconds(timer.text_content(timeout=timeout_ms))
    assert shown is None or shown < seconds, (
        f"the timer already shows {shown} s: the test missed the turn to {seconds} s"
    )
    reached = wait_for_clock(timer, seconds, timeout_ms)
    at = time.monotonic()
    assert reached == seconds, f"the timer jumped to {reached} s, past {seconds} s"
    return Tick(seconds, at)


def slider_number(slider: Locator, attribute: str) -> float:
    """aria-valuemax / aria-valuenow of a slider (a native range input's max / value too)."""
    value = slider.evaluate(
        """(el, a) => el.getAttribute(a) ??
             (a === "aria-valuemax" ? el.max : a === "aria-valuenow" ? el.value : null)""",
        attribute,
    )
    assert value not in (None, ""), f"the slider has no {attribute}"
    return float(value)


def wait_for_position(slider: Locator, seconds: float, timeout_ms: float = 10_000) -> None:
    """Waits until a "Seek" slider's aria-valuenow reaches `seconds` (it plays)."""
    handle = slider.element_handle()
    slider.page.wait_for_function(
        """([el, s]) => Number(el.getAttribute("aria-valuenow") ?? el.value) >= s""",
        arg=[handle, seconds],
        timeout=timeout_ms,
    )


def audio_probe(page: Page) -> dict[str, float]:
    """What the page played so far (see support.AUDIO_PROBE)."""
    return page.evaluate("() => ({...window.__e2eAudio})")


def wait_for_sound(page: Page, after: dict[str, float], timeout_ms: float = 10_000) -> None:
    """Waits until the page plays audio that moves on, beyond what `after` recorded."""
    page.wait_for_function(
        "n => window.__e2eAudio.progressed > n", arg=after["progressed"], timeout=timeout_ms
    )


def service_worker_ready(page: Page, timeout_ms: int = 10_000) -> bool:
    """navigator.serviceWorker.ready, or False after `timeout_ms` (so a missing worker fails)."""
    return bool(
        page.evaluate(
            """ms => Promise.race([
                 navigator.serviceWorker.ready.then(() => true),
                 new Promise(r => setTimeout(() => r(false), ms)),
               ])""",
            timeout_ms,
        )
    )


def settle(sender: Person, receiver: Person, chat_id: str) -> None:
    """The sender posts a text over the API and waits until the receiver's page shows it.

    The server keeps a chat's order, so whatever the sender did before (a voice message sent, a
    recording cancelled) has reached the receiver's page by then: a later count is final.
    """
    text = unique_text("All caught up")
    sender.api.send(chat_id, text)
    expect(receiver.text_items(text)).to_have_count(1)


def first_visible(*checks: Any, timeout: float = 10.0, what: str = "one of them") -> int:
    """Index of the first callable that returns True, checking them in turn until `timeout`."""
    found: list[int] = []

    def any_true() -> bool:
        for i, check in enumerate(checks):
            if check():
                found.append(i)
                return True
        return False

    eventually(any_true, timeout=timeout, what=what)
    return found[0]


# --- screenshots ----------------------------------------------------------------------------------
def _next_frames(page: Page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def shoot(page: Page, name: str, *, sizes: tuple[Size, ...] = SIZES) -> list[Path]:
    """Saves docs/screenshots/NAME-phone.png and NAME-desktop.png of the page as it is now.

    The page's own size is taken first; for the other size the viewport is resized (as when a
    phone turns or a window narrows) and then restored. Pass `sizes=(person.size,)` where a resize
    would disturb the scene (an open menu, a held button).
    """
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size or PHONE.viewport
    ordered = sorted(sizes, key=lambda s: s.viewport != original)
    saved: list[Path] = []
    for size in ordered:
        if page.viewport_size != size.viewport:
            page.set_viewport_size(size.viewport)  # type: ignore[arg-type]
            _next_frames(page)
        path = SCREENSHOT_DIR / f"{name}-{size.name}.png"
        page.screenshot(path=path, animations="disabled", caret="hide")
        saved.append(path)
    if page.viewport_size != original:
        page.set_viewport_size(original)  # type: ignore[arg-type]
        _next_frames(page)
    return saved


# --- accessibility --------------------------------------------------------------------------------
_AXE = Axe()


def check_a11y(page: Page, what: str) -> None:
    """axe-core on the page as it is now: fails on any serious or critical violation."""
    results = _AXE.run(page)
    bad = blocking_violations(results.response)
    assert not bad, (
        f"axe-core: {len(bad)} serious or critical violation(s) on {what} ({page.url}):\n"
        + format_violations(bad)
    )


@contextlib.contextmanager
def exported_chat_offline(browser: Browser, user: User, chat_id: str, into: Path) -> Iterator[Page]:
    """The chat's export (with media), unzipped into ``into``, its chat.html open in a browser
    with the network off: what someone sees who kept the zip and has no server."""
    r = user.http.get(f"/chats/{chat_id}/export", params={"media": "true"})
    assert r.status_code == 200, r.text
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(into)
    context = browser.new_context(offline=True, locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto((into / "chat.html").as_uri())
        yield page
    finally:
        context.close()
