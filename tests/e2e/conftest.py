"""Fixtures of the browser tests: a server per module, one Chromium, people with logged-in pages.

- `backend`: always "sqlite" here. The browser tests check the web app, not the storage: the API
  suite already runs on both backends, so the e2e tests run once, on SQLite (in-process events,
  blobs in the data dir), and stay fast.
- `app_server`: the module's `voxbox serve` (registration open, the built web app at /).
- `speech`: a 12 s speech WAV (espeak-ng + sox, 48 kHz mono 16-bit) and its exact length. Chromium's
  fake microphone plays it in a loop, so every recording hears a voice.
- `browser`: one headless Debian Chromium for the session (never a downloaded one), with the fake
  microphone; MediaRecorder records it as WebM/Opus.
- `make_person(name, size=PHONE, login="cookie")`: registers `name` over the API and opens a browser
  context of that size (PHONE 360x740 with touch, or DESKTOP 1280x800), logged in by
  POST /auth/login?session=cookie from the context (`login="ui"`: through the sign-in form;
  `login=None, register=False`: a stranger on the sign-in page). -> e2e.ui.Person
- `alice` (phone) and `bob` (desktop): two people, each with their own browser context.
- `make_api_user(name)`: an account without a browser, for someone who only sends.

A failing test's report gets each person's browser console, the URL and ARIA snapshot of their
pages and a screenshot path; the root conftest adds the server's log.

Run only these: `pytest tests/e2e` or `pytest -m e2e`; skip them: `pytest -m "not e2e"`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from e2e.support import (
    AUDIO_PROBE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Size,
    make_speech_wav,
)
from e2e.ui import Person, login_through_ui, login_with_cookie, record_browser_log
from support.api import User, make_user_on
from support.factory import ServerFactory
from support.server import ServerProcess

SPEECH_SECONDS = 12.0
E2E_DIR = Path(__file__).resolve().parent
PEOPLE = pytest.StashKey[list[Person]]()

# Auto-waiting assertions wait up to 10 s: a voice message crosses a MediaRecorder, a tus upload,
# the audio pipeline and a WebSocket before Bob sees it, on a 2-core machine.
expect.set_options(timeout=10_000)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: browser tests (Playwright + Chromium), tests/e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the browser tests `e2e` and runs them last.

    Playwright's sync API keeps its event loop marked as running in the main thread while the
    session's browser lives, so no asyncio test may run after the first browser test.
    """
    e2e = [item for item in items if E2E_DIR in Path(item.path).parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    chosen = {id(item) for item in e2e}
    items[:] = [item for item in items if id(item) not in chosen] + e2e


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failed browser test shows what each person's browser said and showed."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for person in item.stash.get(PEOPLE, []):
            report.sections.extend(person.diagnostics(item.name))
    return report


# --- the server -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def backend() -> str:
    """The browser tests run on SQLite only (overrides the root conftest's parametrised one)."""
    return "sqlite"


@pytest.fixture(scope="module")
def app_server(server_factory: ServerFactory) -> ServerProcess:
    """The module's server: SQLite, registration open, the web app served at /."""
    srv = server_factory.start()
    r = httpx.get(srv.url + "/", timeout=10)
    if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
        pytest.fail(
            f"GET / answered {r.status_code} {r.headers.get('content-type')}: the web app is not "
            "built or not served (run `make web`, or `cd web && npx vite build`)",
            pytrace=False,
        )
    return srv


# --- sound and browser ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Speech:
    path: Path
    seconds: float


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    try:
        seconds = make_speech_wav(path, SPEECH_SECONDS)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    assert seconds == SPEECH_SECONDS, seconds
    return Speech(path, seconds)


@pytest.fixture(scope="session")
def browser(speech: Speech) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/test-deps.sh (apt-get install chromium)",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={speech.path}"],
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


# --- people ---------------------------------------------------------------------------------------
@pytest.fixture
def make_api_user(app_server: ServerProcess) -> Iterator[Callable[[str], User]]:
    users: list[User] = []

    def make(name: str) -> User:
        user = make_user_on(app_server, display_name=name, prefix=name.lower())
        users.append(user)
        return user

    yield make
    for user in users:
        user.http.close()


@pytest.fixture
def make_person(
    browser: Browser, app_server: ServerProcess, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Person]]:
    people: list[Person] = []
    request.node.stash[PEOPLE] = people

    def make(
        name: str, size: Size = PHONE, *, login: str | None = "cookie", register: bool = True
    ) -> Person:
        user = None
        if register:
            user = make_user_on(app_server, display_name=name, prefix=name.lower())
        context = browser.new_context(
            viewport=size.viewport,  # type: ignore[arg-type]
            has_touch=size.touch,
            is_mobile=size.touch,
            locale="en-US",
            timezone_id="UTC",
            color_scheme="light",
            accept_downloads=True,
        )
        context.set_default_timeout(10_000)
        context.grant_permissions(["microphone"], origin=app_server.url)
        context.add_init_script(AUDIO_PROBE)
        person = Person(name, user, app_server, context, context.new_page(), size)
        record_browser_log(context, person.log)
        people.append(person)
        if user is not None and login == "cookie":
            login_with_cookie(context, app_server, user.handle, user.password)
        elif user is not None and login == "ui":
            login_through_ui(person.page, app_server, user.handle, user.password)
        return person

    yield make
    for person in people:
        person.context.close()
        if person.user is not None:
            person.user.http.close()


@pytest.fixture
def alice(make_person: Callable[..., Person]) -> Person:
    return make_person("Alice", PHONE)


@pytest.fixture
def bob(make_person: Callable[..., Person]) -> Person:
    return make_person("Bob", DESKTOP)
