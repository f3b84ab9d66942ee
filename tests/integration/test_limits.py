"""Protective limits: per-key rate limit (in process and shared through Redis), request body size, CORS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.body_limit import MULTIPART_SLACK, install_body_limit
from api.errors import install_error_handlers
from api.main import create_app
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings, get_settings

UNKNOWN_CASE = "/v1/analyses/0123456789abcdef"  # an authenticated, rate-limited request that does no work (404)


def make_key(settings: Settings, name: str) -> dict[str, str]:
    with session_scope(settings.sqlalchemy_url) as session:
        _, raw = api_keys.create_key(session=session, role="app", name=name)
    return {"X-API-Key": raw}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def assert_rate_limited(response: Any) -> None:
    error = assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    # 3 per minute refill one token every 20 s
    assert 1 <= retry_after <= 20 and error["retry_after"] == retry_after


def test_rate_limit_is_per_key_and_per_process_in_memory(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    limited = reconfigure(monkeypatch, SKINTROUBLE_RATE_LIMIT_PER_MINUTE="3")
    with TestClient(create_app(limited)) as first, TestClient(create_app(limited)) as second:
        busy, quiet = make_key(limited, "busy"), make_key(limited, "quiet")
        assert [first.get(UNKNOWN_CASE, headers=busy).status_code for _ in range(3)] == [404] * 3
        assert_rate_limited(first.get(UNKNOWN_CASE, headers=busy))
        assert first.get(UNKNOWN_CASE, headers=quiet).status_code == 404  # another key has its own bucket
        # without Redis each process counts alone: the second instance has not seen `busy` yet
        assert second.get(UNKNOWN_CASE, headers=busy).status_code == 404


def test_rate_limit_is_shared_between_instances_through_redis(
    settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = reconfigure(monkeypatch, SKINTROUBLE_RATE_LIMIT_PER_MINUTE="3", REDIS_URL=redis_url)
    with TestClient(create_app(limited)) as first, TestClient(create_app(limited)) as second:
        busy, quiet = make_key(limited, "busy"), make_key(limited, "quiet")
        assert first.get(UNKNOWN_CASE, headers=busy).status_code == 404
        assert second.get(UNKNOWN_CASE, headers=busy).status_code == 404
        assert first.get(UNKNOWN_CASE, headers=busy).status_code == 404
        assert_rate_limited(second.get(UNKNOWN_CASE, headers=busy))  # the 4th request overall, on either instance
        assert_rate_limited(first.get(UNKNOWN_CASE, headers=busy))
        assert second.get(UNKNOWN_CASE, headers=quiet).status_code == 404


def test_rate_limit_survives_redis_going_away(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead Redis must not take the API down: the limiter falls back to its in-process buckets."""
    limited = reconfigure(monkeypatch, SKINTROUBLE_RATE_LIMIT_PER_MINUTE="3", REDIS_URL="redis://127.0.0.1:1/0")
    with TestClient(create_app(limited)) as client:
        busy = make_key(limited, "busy")
        assert [client.get(UNKNOWN_CASE, headers=busy).status_code for _ in range(3)] == [404] * 3
        assert_rate_limited(client.get(UNKNOWN_CASE, headers=busy))


def test_body_over_the_limit_by_content_length_or_streamed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    small = reconfigure(monkeypatch, SKINTROUBLE_MAX_UPLOAD_BYTES="1000")
    limit = 1000 + MULTIPART_SLACK
    too_big = b"\xff\xd8\xff" + b"\x00" * (limit + 10)
    boundary = "limit-test-boundary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + too_big
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(multipart), 8192):
            yield multipart[start : start + 8192]

    with TestClient(create_app(small)) as client:
        headers = make_key(small, "phone")
        declared = client.post("/v1/analyses", content=too_big, headers={**headers, "Content-Type": "image/jpeg"})
        assert_error(declared, 413, "payload_too_large")
        form = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        streamed = client.post("/v1/analyses", content=chunks(), headers=form)
        assert "content-length" not in {k.lower() for k in streamed.request.headers}  # chunked, nothing declared
        assert_error(streamed, 413, "payload_too_large")
        # a multipart upload over max_upload_bytes but under the slack is refused by the route itself
        over_route_limit = client.post(
            "/v1/analyses", files={"image": ("a.jpg", b"\xff\xd8\xff" + b"\x01" * 2000, "image/jpeg")}, headers=headers
        )
        assert_error(over_route_limit, 413, "payload_too_large")
        assert client.get("/healthz").status_code == 200  # still serving


def _limited_app(limit: int) -> FastAPI:
    """The project's error handlers and body limit around one route that reads the whole body."""
    app = FastAPI()
    install_error_handlers(app)
    install_body_limit(app, limit)

    @app.post("/")
    async def read_all(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    return app


def _post_chunks(app: FastAPI, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[list[Any], int]:
    """Drive the app at the ASGI level; (messages sent, chunks pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent, pulled


def _status_and_error(sent: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert (b"content-type", b"application/json") in starts[0]["headers"], starts[0]
    return starts[0]["status"], json.loads(body)


def test_streamed_body_stops_being_read_past_the_limit() -> None:
    """At the ASGI level: chunks are counted as they arrive and reading stops right after the limit."""
    chunk, limit, offered = b"x" * 1000, 5000, 100
    sent, pulled = _post_chunks(_limited_app(limit), [chunk] * offered, [(b"transfer-encoding", b"chunked")])
    assert pulled == limit // len(chunk) + 1  # one chunk past the limit, never the other 94
    status, body = _status_and_error(sent)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_lying_content_length_is_counted_not_trusted() -> None:
    """A body larger than its (small) Content-Length is refused by the running count, in the JSON shape."""
    sent, _ = _post_chunks(_limited_app(5000), [b"x" * 4000, b"x" * 4000], [(b"content-length", b"10")])
    status, body = _status_and_error(sent)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_declared_oversize_is_refused_as_json_without_reading() -> None:
    """Starlette alone would answer text/plain here; the project's JSON error comes first and nothing is read."""
    sent, pulled = _post_chunks(_limited_app(5000), [b"x" * 10], [(b"content-length", b"5001")])
    status, body = _status_and_error(sent)
    assert status == 413 and body["error"]["code"] == "payload_too_large" and pulled == 0


def test_bodies_up_to_the_limit_pass_whole() -> None:
    sent, _ = _post_chunks(_limited_app(1000), [b"a" * 600, b"b" * 400], [(b"content-length", b"1000")])
    status, body = _status_and_error(sent)
    assert status == 200 and body == {"read": 1000}
    sent, _ = _post_chunks(_limited_app(1000), [b"a" * 600, b"b" * 401], [(b"transfer-encoding", b"chunked")])
    assert _status_and_error(sent)[0] == 413


def test_cors_preflight_only_for_configured_origins(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    cors = reconfigure(monkeypatch, SKINTROUBLE_CORS_ORIGINS='["https://app.example"]')
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    with TestClient(create_app(cors)) as client:
        allowed = client.options("/v1/analyses", headers={"Origin": "https://app.example", **preflight})
        other = client.options("/v1/analyses", headers={"Origin": "https://other.example", **preflight})
        read = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    assert read.headers["access-control-allow-origin"] == "https://app.example"
