"""The review web page: static HTML, JS and CSS served by the API (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import ApiError

STATIC = Path(__file__).parent / "static"
_FILES = {"review.js": "text/javascript", "review.css": "text/css"}
# third-party libraries vendored from the npm registry (see static/vendor/VENDORED.md); licences served beside them
_VENDOR = {"konva.min.js": "text/javascript", "konva.LICENSE": "text/plain"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/review")
def review_page() -> FileResponse:
    return FileResponse(STATIC / "review.html", media_type="text/html", headers={"Content-Security-Policy": _CSP})


@router.get("/review/static/{name}")
def review_static(name: str) -> FileResponse:
    if name not in _FILES:
        raise ApiError(404, "not_found", "No such file.")
    return FileResponse(STATIC / name, media_type=_FILES[name], headers={"Cache-Control": "no-cache"})


@router.get("/review/static/vendor/{name}")
def review_vendor(name: str) -> FileResponse:
    if name not in _VENDOR:
        raise ApiError(404, "not_found", "No such file.")
    return FileResponse(STATIC / "vendor" / name, media_type=_VENDOR[name], headers={"Cache-Control": "max-age=86400"})
