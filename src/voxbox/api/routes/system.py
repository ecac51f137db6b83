from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voxbox.api.deps import B
from voxbox.api.schemas import HealthOut
from voxbox.core.errors import NotFound

router = APIRouter(tags=["system"])
docs_router = APIRouter()  # at the root only
DOCS_ASSETS = "/api/v1/docs/assets"


@router.get("/healthz")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, b: B) -> Response:
    """Prometheus metrics, for a scraper holding ``VOXBOX_METRICS_TOKEN`` (as a bearer token);
    without that setting there is no /metrics (404): they say too much to be public."""
    token = b.settings.metrics_token
    given = request.headers.get("authorization", "")
    if token is None or not hmac.compare_digest(
        given.encode(), f"Bearer {token.get_secret_value()}".encode()
    ):
        raise NotFound("Not found.")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@docs_router.get("/api/v1/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    """Swagger UI for the OpenAPI document, its scripts served from here (no CDN)."""
    return get_swagger_ui_html(
        openapi_url="/api/v1/openapi.json",
        title="voxbox API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="/icons/icon.svg",
    )
