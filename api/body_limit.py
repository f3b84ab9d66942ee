"""Request body limit: Starlette's `RequestBodyLimitMiddleware` (starlette>=1.6) does the counting.

It counts the body as it streams in (a lying or absent Content-Length included) and raises a 413 `HTTPException`
from `receive` once the total passes the limit; the app's handler (api/errors.py) answers it in the one JSON error
shape, and nothing past the limit (plus one chunk) is read.

Only the up-front refusal by Content-Length is ours. For a declared oversize body Starlette replaces whatever the
app answers with a hard-coded text/plain "Content Too Large" written past every handler (starlette 1.6 to 1.10),
so `DeclaredLengthLimit` refuses it first, as JSON, before Starlette or the app sees the request.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the photo


class DeclaredLengthLimit:
    """Answer 413 JSON at once when Content-Length already says the body is too large (the body is never read)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _declared_length(scope) > self.max_bytes:
            response = error_response(
                413,
                "payload_too_large",
                f"The request body is larger than the limit of {self.max_bytes:,} bytes.",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    try:
        return int(Headers(scope=scope).get("content-length", "0"))
    except ValueError:
        return 0  # unparseable: the streamed count decides


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Add both layers; call before the middleware that must run first (auth, security headers) is added."""
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_bytes)
    app.add_middleware(DeclaredLengthLimit, max_bytes=max_bytes)
