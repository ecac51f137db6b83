"""Serving the web app (the PWA built into ``dist/`` by ``make web``) and its share target.

Mounted after the API: ``/api/v1``, ``/healthz`` and ``/metrics`` are never shadowed. The shell
(index.html) answers the app's routes with a strict CSP (no inline script, no framing); files
under ``dist/`` are served as they are, hashed assets as immutable.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import Scope

from voxbox.api.deps import B, optional_credentials
from voxbox.core import sessions
from voxbox.core.errors import NotFound, Unavailable
from voxbox.core.sessions import Credentials
from voxbox.web import share as share_module

DIST_DIR = Path(__file__).resolve().parent / "dist"

SHELL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Not "no-referrer": with it, browsers send `Origin: null` on the app's own POSTs (Fetch
# "serializing a request origin"), and the session's CSRF check would refuse them all.
REFERRER_POLICY = "same-origin"
SHELL_HEADERS = {
    "Content-Security-Policy": SHELL_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": REFERRER_POLICY,
    "Cache-Control": "no-cache",
}
STATIC_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": REFERRER_POLICY}
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}
_BODY_HEADERS = frozenset({"content-length", "content-type", "accept-ranges"})  # not on a 304


class _AppRoute(APIRoute):
    """A route of the web app: never matches under ``/api``, so an unknown API path stays the
    API's 404 (or 405, or slash redirect) instead of the web app's catch-all."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(include_in_schema=False, route_class=_AppRoute)


def _file(dist: Path, path: str) -> Path | None:
    """The regular file at ``path`` under ``dist``, or None: no ``..``, no hidden files, no
    link leading out of ``dist``."""
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    root = dist.resolve()
    try:
        candidate = root.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _serve(request: Request, file: Path, headers: dict[str, str]) -> Response:
    """The file with ``headers``, ETag and Last-Modified; 304 for a matching If-None-Match.

    The build writes a gzip copy (``NAME.gz``) of each script and style sheet; it is sent
    instead to a browser that accepts gzip (a third of the bytes).
    """
    media_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
    gzipped = file.with_name(file.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and gzipped.is_file():
        headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        file = gzipped
    elif gzipped.is_file():
        headers = {**headers, "Vary": "Accept-Encoding"}
    response = FileResponse(file, headers=headers, media_type=media_type, stat_result=os.stat(file))
    etag = response.headers["etag"]
    wanted = request.headers.get("if-none-match")
    if wanted and etag in {t.strip().removeprefix("W/") for t in wanted.split(",")}:
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS}
        return Response(status_code=304, headers=kept)
    return response


async def shell(request: Request) -> Response:
    """The app shell for every route of the app; it routes on the client."""
    index = _file(DIST_DIR, "index.html")
    if index is None:
        raise Unavailable("The web app is not built: run `make web` (or `make`).")
    return _serve(request, index, SHELL_HEADERS)


for _path in ("/", "/chats/{chat_id}", "/share", "/starred", "/settings"):
    router.add_api_route(_path, shell, methods=["GET", "HEAD"])


@router.post("/share")
async def share_target(
    request: Request,
    b: B,
    credentials: Annotated[Credentials | None, Depends(optional_credentials)],
) -> Response:
    """The Web Share Target (UI.md): files in the field ``audio`` become complete uploads of
    the user's, then the app's "Send to…" page lists them (``/share?uploads=ID,ID``)."""
    user = await sessions.authenticate_form_post(b, credentials)
    if user is None:
        return RedirectResponse("/?shared=login", status_code=303)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        ids = []  # a form without files (a shared link or text only)
    else:
        try:
            ids = await share_module.store_shared_files(b, user, request.stream(), content_type)
        except ClientDisconnect:  # nothing was kept, and nobody is listening
            return Response(status_code=400)
    if not ids:
        return RedirectResponse("/share?error=no_files", status_code=303)
    return RedirectResponse(f"/share?uploads={','.join(ids)}", status_code=303)


@router.api_route("/sw.js", methods=["GET", "HEAD"])
async def service_worker(request: Request) -> Response:
    headers = {**STATIC_HEADERS, "Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}
    return _serve(request, _static(request, "sw.js"), headers)


@router.api_route("/assets/{path:path}", methods=["GET", "HEAD"])
async def asset(request: Request, path: str) -> Response:
    """Hashed build output: a new build has new names, so a copy never goes stale."""
    file = _static(request, f"assets/{path}")
    return _serve(request, file, {**STATIC_HEADERS, "Cache-Control": IMMUTABLE})


@router.api_route("/{path:path}", methods=["GET", "HEAD"])  # after every other route
async def static_file(request: Request, path: str) -> Response:
    """Any other file of the build (manifest, icons ...), revalidated on each use."""
    file = _static(request, path)
    if file.suffix == ".html":  # the shell by another name: only ever with the shell's CSP
        return await shell(request)
    return _serve(request, file, {**STATIC_HEADERS, "Cache-Control": "no-cache"})


def _static(request: Request, path: str) -> Path:
    file = _file(DIST_DIR, path)
    if file is None:
        raise NotFound(f"No such page or file: {request.url.path[:200]}")
    return file
