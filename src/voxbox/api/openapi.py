"""The OpenAPI schema, made to tell the truth (so generated clients work).

FastAPI documents a 2xx and its own array-shaped 422 for each operation. Here every operation
gets the problem responses it can really give, each with the problem+json schema, and the
limits that come from settings (page size, forward targets, text length) are written into
the schema the running server serves. Which statuses an operation gives:

- every operation: 400 (a body that is not JSON, a NUL in the URL);
- with parameters or a body: 422; with a body: 413 (bodies are limited per route);
- authenticated: 401; with a path parameter: 404 (what the caller may not see is a 404 too);
- and what the operation itself adds (``EXTRA``): 403, 409, 412, 415, 429, 503, 507...
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from voxbox.config import Settings

PROBLEM = "application/problem+json"
OCTETS = "application/offset+octet-stream"
API = "/api/v1"

_TUS = {412, 413, 507}
EXTRA: dict[tuple[str, str], set[int]] = {
    ("post", "/auth/register"): {403, 409, 429},
    ("post", "/auth/login"): {401, 429},
    ("post", "/invites"): {403},
    ("post", "/chats"): {403, 404},
    ("post", "/chats/{chat_id}/members"): {403, 409},
    ("delete", "/chats/{chat_id}/members/{handle}"): {403},
    ("post", "/chats/{chat_id}/messages"): {403, 409, 415, 429, 507},
    ("delete", "/messages/{message_id}"): {403},
    ("post", "/messages/{message_id}/email"): {409, 429, 503},
    ("post", "/messages/{message_id}/forward"): {403, 409, 429},
    ("post", "/messages/{message_id}/played"): {409},
    ("get", "/messages/{message_id}/receipts"): {403},
    ("post", "/chats/{chat_id}/read"): {409},
    ("post", "/uploads"): {403, *_TUS},
    ("head", "/uploads/{upload_id}"): {412},
    ("patch", "/uploads/{upload_id}"): {403, 409, 415, *_TUS},
    ("post", "/uploads/{upload_id}/finish"): {409, 413, 415, 507},
    ("get", "/media/{media_id}/content"): {409, 416},
    ("get", "/uploads/{upload_id}/content"): {416},
    ("post", "/backups"): {409, 507},
    ("get", "/backups/{backup_id}/download"): {409},
    ("post", "/backups/restore"): {409, 411, 507},
    ("post", "/imports"): {409, 411, 507},
    ("get", "/search"): {429},
}
# tus headers: what the server parses (a 400 otherwise; a PATCH of another type is a 415).
TUS_HEADERS: dict[str, dict[str, Any]] = {
    "tus-resumable": {"type": "string", "enum": ["1.0.0"]},
    "upload-length": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    "upload-offset": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    "upload-defer-length": {"type": "string", "enum": ["1"]},
}
# Successes with no body (tus answers in headers), and those with bytes, not JSON.
NO_BODY = {("post", "/uploads"), ("head", "/uploads/{upload_id}")}
_AUDIO = ["audio/*", "video/*", "application/octet-stream"]
BYTES: dict[tuple[str, str], dict[str, list[str]]] = {
    ("get", "/uploads/{upload_id}/content"): {"200": _AUDIO},
    ("get", "/media/{media_id}/content"): {
        "200": _AUDIO,
        "206": _AUDIO,
        "304": [],  # If-None-Match: the client's copy is current
    },
}
# Settings that bound request values: (schema, property) -> (keyword, setting under limits).
SETTING_BOUNDS: dict[tuple[str, str], tuple[str, str]] = {
    ("SendMessageIn", "text"): ("maxLength", "max_text_chars"),
    ("ForwardIn", "chat_ids"): ("maxItems", "forward_max_chats"),
    ("GroupChatIn", "handles"): ("maxItems", "group_max_members"),
}


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details with voxbox's ``code``. Some add members of their
    own: ``errors`` (a 422 from request validation), ``reason`` and its figures (a 413 or
    422 that says which limit), as docs/api.md tells."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["about:blank"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["not_found"])
    errors: list[ValidationIssue] | None = None
    reason: str | None = None


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the truthful schema at the app's ``openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = truthful(schema, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def truthful(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["ValidationIssue"] = components["Problem"].pop("$defs")["ValidationIssue"]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if any(p["name"] == "tus-resumable" for p in operation.get("parameters", [])):
                _tus_headers(operation)
            if (method, path) == ("patch", f"{API}/uploads/{{upload_id}}"):
                _tus_patch_body(operation)
            short = path.removeprefix(API)
            _document_success(method, short, operation)
            _document_problems(method, short, operation)
    for (model, prop), (keyword, setting) in SETTING_BOUNDS.items():
        target = components.get(model, {}).get("properties", {}).get(prop)
        if target is not None:
            _bound(target, keyword, getattr(settings.limits, setting))
    for name, path in schema.get("paths", {}).items():
        for parameter in path.get("get", {}).get("parameters", []):
            number = parameter["schema"]  # an optional one's is in anyOf, beside null
            number = next(
                (t for t in number.get("anyOf", []) if t.get("type") == "integer"), number
            )
            if parameter["name"] == "limit":
                number["maximum"] = (
                    settings.limits.search_results_max
                    if name == f"{API}/search"
                    else settings.limits.page_max
                )
            if parameter["name"] == "offset" and name == f"{API}/search":
                number["maximum"] = settings.limits.search_offset_max
    return schema


def statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses ``operation`` can answer (see the module's docstring)."""
    found = {400}
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        found.add(422)
    if "requestBody" in operation:
        found.add(413)
    if operation.get("security"):
        found.add(401)
    if any(p["in"] == "path" for p in parameters):
        found.add(404)
    return found | EXTRA.get((method, path), set())


def _document_success(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if (method, path) in NO_BODY:
        for status, response in responses.items():
            if status.startswith("2"):
                response.pop("content", None)
    for status, content in BYTES.get((method, path), {}).items():
        response = responses.setdefault(status, {"description": HTTPStatus(int(status)).phrase})
        response.pop("content", None)
        if content:
            response["content"] = {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in content
            }


def _document_problems(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses(method, path, operation)):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {
                    "description": "Seconds until a new attempt may succeed.",
                    "schema": {"type": "integer"},
                }
            }


def _tus_headers(operation: dict[str, Any]) -> None:
    """A tus request's headers: ``Tus-Resumable`` required (a 412 without it), and each
    header's form."""
    for parameter in operation["parameters"]:
        name = parameter["name"]
        if parameter["in"] == "header" and name in TUS_HEADERS:
            parameter["schema"] = TUS_HEADERS[name]
            parameter["required"] = name in ("tus-resumable", "upload-offset")


def _tus_patch_body(operation: dict[str, Any]) -> None:
    """A PATCH's body is the upload's next bytes (its Content-Type says so, not a header
    parameter)."""
    operation["parameters"] = [p for p in operation["parameters"] if p["name"] != "content-type"]
    operation["requestBody"] = {
        "required": True,
        "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
    }


def _bound(target: dict[str, Any], keyword: str, value: int) -> None:
    """Set ``keyword`` on a property, or on the non-null branch of an optional one."""
    for branch in target.get("anyOf", [target]):
        if branch.get("type") != "null":
            branch[keyword] = value
