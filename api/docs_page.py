"""/docs (Swagger UI) and /redoc served offline: their scripts and styles come from the installed
`fastapi-offline` package, never from a CDN, under a Content-Security-Policy that allows nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import ApiError

ASSETS = "/docs/static"
FAVICON = f"{ASSETS}/favicon.png"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

router = APIRouter(include_in_schema=False)


@cache
def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def csp_for(html: str) -> str:
    """Scripts: our own origin plus the page's inline bootstrap script by hash. Styles: inline ones are set by
    both UIs at run time. ReDoc renders in a blob: worker. Nothing may load from elsewhere."""
    scripts = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _about(request: Request) -> dict[str, str]:
    return {"openapi_url": request.app.openapi_url, "title": f"{request.app.title} - API"}


def _page(response: HTMLResponse) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": csp_for(html), "Cache-Control": "no-cache"})


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(
        get_swagger_ui_html(
            **_about(request),
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(
        get_redoc_html(
            **_about(request),
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
    )


@router.get(ASSETS + "/{name}")
def docs_asset(name: str) -> FileResponse:
    if name not in _FILES:
        raise ApiError(404, "not_found", "No such file.")
    return FileResponse(
        assets_dir() / name, media_type=_FILES[name], headers={"Cache-Control": "public, max-age=86400"}
    )
