"""Fixtures: a real voxbox server (SQLite or PostgreSQL + Redis), users, per-test servers.

- `backend`: "sqlite" | "postgres"; every test that uses a server runs once per backend.
- `server`: the session's server for that backend (registration open, generous login limits).
- `make_user(...)`: registers a fresh user over HTTP -> support.api.User
  (.id .handle .password .token .http, .events(after) for the WebSocket).
- `make_server(**env)`: a server of the test's own, with extra VOXBOX_* settings, same backend
  (its own data dir and, on postgres, its own database). Stopped at the end of the test.
- `server_factory`: the same, for module-scoped servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from support import server as server_module
from support.api import User, make_user_on
from support.backends import BACKENDS, PostgresDatabases
from support.factory import S3_BUCKET, ServerFactory
from support.s3 import MotoS3, moto_server
from support.server import ServerProcess


def _env_kwargs(env: dict[str, object]) -> dict[str, str | None]:
    """make_server(registration="invite", limits__login_window_seconds=2) -> VOXBOX_* vars."""
    out: dict[str, str | None] = {}
    for key, value in env.items():
        name = key if key.startswith("VOXBOX_") else "VOXBOX_" + key.upper()
        out[name] = None if value is None else str(value)
    return out


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """A real S3 API endpoint (moto's standalone server) with the test bucket."""
    with moto_server() as s3:
        s3.create_bucket(S3_BUCKET)
        yield s3


def _s3_for(backend: str, request: pytest.FixtureRequest) -> MotoS3 | None:
    """The postgres backend keeps blobs in S3; started only when such a server is wanted."""
    return request.getfixturevalue("moto_s3") if backend == "postgres" else None


@pytest.fixture(scope="session")
def server(
    backend: str,
    pg_databases: PostgresDatabases,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[ServerProcess]:
    factory = ServerFactory(
        backend,
        pg_databases,
        tmp_path_factory.mktemp(f"session-{backend}"),
        name="session",
        s3=_s3_for(backend, request),
    )
    try:
        yield factory.start()
    finally:
        factory.close()


@pytest.fixture(scope="module")
def server_factory(
    backend: str,
    pg_databases: PostgresDatabases,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[ServerFactory]:
    factory = ServerFactory(
        backend,
        pg_databases,
        tmp_path_factory.mktemp(f"module-{backend}"),
        s3=_s3_for(backend, request),
    )
    yield factory
    factory.close()


@pytest.fixture
def make_server(
    backend: str, pg_databases: PostgresDatabases, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServerProcess]]:
    """make_server(registration="invite", limits__login_attempts_per_handle=3) -> ServerProcess.

    Keyword names map to VOXBOX_* variables (upper-cased, prefixed); full names work too.
    `share_store_with=other_server` reuses the other server's database and Redis;
    `serve_args=("--no-jobs",)` is added to `voxbox serve`; `worker=True` starts `voxbox worker`.
    """
    factory = ServerFactory(
        backend, pg_databases, tmp_path, name="own", s3=_s3_for(backend, request)
    )

    def make(
        share_store_with: ServerProcess | None = None,
        serve_args: tuple[str, ...] = (),
        worker: bool = False,
        **env: object,
    ) -> ServerProcess:
        return factory.start(
            _env_kwargs(env),
            share_store_with=share_store_with,
            serve_args=serve_args,
            worker=worker,
        )

    yield make
    factory.close()


@pytest.fixture
def make_user(server: ServerProcess) -> Iterator[Callable[..., User]]:
    """make_user(handle=None, password=None, display_name=None, invite=None, server=None) -> User.

    Registers over HTTP with a unique handle on the session server (or `server=`).
    """
    users: list[User] = []

    def make(*, server: ServerProcess = server, prefix: str = "u", **kwargs: object) -> User:
        user = make_user_on(server, prefix=prefix, **kwargs)  # type: ignore[arg-type]
        users.append(user)
        return user

    yield make
    for user in users:
        user.http.close()


@pytest.fixture
def anon(server: ServerProcess) -> Iterator[httpx.Client]:
    """An unauthenticated client on the session server's API base path."""
    with server.client() as c:
        yield c


_FIRST_SERVER = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_FIRST_SERVER] = len(server_module.CREATED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, attach the log tails of the servers the test used to the report."""
    report = yield
    if report.failed:
        involved: list[ServerProcess] = []
        for value in getattr(item, "funcargs", {}).values():
            srv = value.server if isinstance(value, User) else value
            if isinstance(srv, ServerProcess) and srv not in involved:
                involved.append(srv)
        for srv in server_module.CREATED[item.stash.get(_FIRST_SERVER, 0) :]:
            if srv not in involved:
                involved.append(srv)
        for srv in involved:
            report.sections.append((f"{srv.name} log", srv.log_tail(4000)))
    return report
