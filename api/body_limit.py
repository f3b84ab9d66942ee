"""Refuse oversized request bodies before they are buffered: by Content-Length up front, else by counting chunks.

A plain ASGI middleware (not BaseHTTPMiddleware) so that it sees the body as it streams in: once the running
total passes the limit it stops reading, and whatever the application was about to answer is replaced by
one 413 JSON error. Nothing beyond `limit` bytes (plus one chunk) is ever held in memory.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the photo


class BodyTooLarge(Exception):
    """Raised from `receive` when the streamed body passes the limit; the middleware turns it into a 413."""


def _error_message(limit: int) -> bytes:
    body = {
        "error": {
            "code": "payload_too_large",
            "message": f"The request body is larger than the limit of {limit:,} bytes.",
        }
    }
    return json.dumps(body).encode()


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app answered after its body read failed: our 413 replaces that answer
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            # the body read failed and the app gave up (in whatever way): the client gets one clean 413
            if not started:
                started = True
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = _error_message(self.max_bytes)
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
