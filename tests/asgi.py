"""A raw ASGI POST to the analyses endpoint, for tests whose body stream a test client cannot express: a body never
offered, streamed without Content-Length, or cut off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


def post_analysis(
    app: Any, receive: Receive, headers: list[tuple[bytes, bytes]], client: tuple[str, int] = ("127.0.0.1", 5000)
) -> tuple[int, dict[str, Any]]:
    """POST /v1/analyses with `headers` (host added) and the body `receive` yields; the response's status and JSON."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/analyses",
        "raw_path": b"/v1/analyses",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": client,
        "server": ("testserver", 80),
        "app": app,
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)
