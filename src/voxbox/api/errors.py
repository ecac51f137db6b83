"""Every error leaves as RFC 9457 problem JSON with our ``code``."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxbox.core.errors import RateLimited, VoxboxError

PROBLEM = "application/problem+json"
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid",
    429: "rate_limited",
}


def problem(
    status: int,
    title: str,
    detail: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code or _CODES.get(status, "error"),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(VoxboxError)
    async def _domain(_: Request, exc: VoxboxError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return problem(exc.status, exc.title, exc.detail, exc.code, headers, **exc.extensions())

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "Bad request", "The body is not valid JSON.", "bad_request")
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors
        )
        return problem(422, "Invalid", detail or "Invalid request.", "invalid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        headers = exc.headers
        if exc.status_code == 405 and (allowed := allowed_methods(request)):
            headers = {"Allow": ", ".join(allowed)}
        return problem(exc.status_code, title, str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods the API's schema documents at this request's path (Starlette would name
    only those of the first route that matched the path). A path the schema names as it is
    (``/backups/restore``) goes before templates that would also match (``/backups/{id}``),
    as OpenAPI says."""
    path = request.scope["path"]
    paths = request.app.openapi()["paths"]
    if path in paths:
        return sorted(method.upper() for method in paths[path])
    return sorted(
        {
            method.upper()
            for template, operations in paths.items()
            if _template(template).fullmatch(path)
            for method in operations
        }
    )


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)))
