"""create_app(settings): the backends, the API under /api/v1, health and metrics, the web
app at /, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from voxbox import __version__, web
from voxbox.api import errors, openapi
from voxbox.api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    UnhandledErrorMiddleware,
    URLCheckMiddleware,
)
from voxbox.api.routes import (
    accounts,
    backups,
    chats,
    events,
    imports,
    media,
    messages,
    search,
    system,
    uploads,
)
from voxbox.config import Registration, Settings
from voxbox.core import accounts as accounts_core
from voxbox.core import media as media_core
from voxbox.core import tasks, transcripts
from voxbox.core import uploads as uploads_core
from voxbox.core.backends import Backends
from voxbox.core.realtime import LogWatch
from voxbox.core.workers import AckWriter, register_jobs, schedule_local_chores
from voxbox.timeutil import utcnow

log = logging.getLogger("voxbox")
API_PREFIX = "/api/v1"


def create_app(
    settings: Settings, base_url: str = "http://HOST:PORT", *, run_jobs: bool = True
) -> FastAPI:
    """The app; ``base_url`` is where it listens, for the messages it logs. Without
    ``run_jobs`` it defers background jobs but leaves them to other processes (PostgreSQL)."""
    backends = Backends.from_settings(settings)
    register_jobs(backends)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = utcnow()
        await backends.start(run_jobs=run_jobs)
        await _announce_bootstrap(backends, base_url)
        if settings.is_sqlite:  # the one process: whatever it was doing died with it
            await tasks.fail_interrupted_tasks(backends, before=started)
            await media_core.resume_processing(backends)
            await transcripts.resume_transcripts(backends)
            await uploads_core.reopen_stuck_uploads(backends, finishing_since=started)
        schedule_local_chores(backends)
        app.state.acks = AckWriter(backends)
        app.state.acks.start()
        app.state.log_watch = LogWatch(backends)
        app.state.log_watch.start()
        try:
            yield
        finally:
            await app.state.log_watch.close()
            await app.state.acks.close()
            await backends.close()

    app = FastAPI(
        title="voxbox",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by routes/system.py, with its assets from here (no CDN)
        redoc_url=None,
    )
    app.state.backends = backends
    errors.install(app)
    openapi.install(app, settings)
    routers = (accounts, chats, messages, search, uploads, media, events, backups, imports)
    for router in (r.router for r in routers):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(system.router)
    app.include_router(system.router, prefix=API_PREFIX, include_in_schema=False)
    app.include_router(system.docs_router)
    app.mount(system.DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.include_router(web.router)  # last: its catch-all must not shadow the API
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.limits.max_json_bytes,
        streamed={
            ("PATCH", f"{API_PREFIX}/uploads/"): None,  # tus: its own length, after auth
            ("POST", "/share"): None,  # files shared in: each an upload's limit, after auth
            ("POST", f"{API_PREFIX}/backups/restore"): settings.backup.restore_max_bytes,
            ("POST", f"{API_PREFIX}/imports"): settings.imports.max_bytes,
        },
    )
    app.add_middleware(UnhandledErrorMiddleware, on_disk_full=backends.reserve.release)
    app.add_middleware(URLCheckMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    return app


async def _announce_bootstrap(b: Backends, base_url: str) -> None:
    invite = await accounts_core.bootstrap_invite(b)
    if invite is None:
        return
    if b.settings.registration is Registration.closed:
        log.warning(
            "No admin yet. Create one with: voxbox admin create-user HANDLE --admin "
            "(or register with the one-time admin invite %s)",
            invite.code,
        )
        return
    log.warning(
        "No admin yet. One-time admin invite: %s\n"
        "  Register with it to become the admin, e.g.\n"
        "    voxbox register %s --invite %s\n"
        '  or POST /api/v1/auth/register {"handle", "password", "invite": "%s"}.\n'
        "  Or create the admin directly: voxbox admin create-user HANDLE --admin",
        invite.code,
        base_url,
        invite.code,
        invite.code,
    )
