"""Cost of abuse: the key is checked from the headers before any body byte is read; requests without a valid key
are rate-limited per client address; limited answers carry `Retry-After` and `RateLimit-*`."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.main import create_app
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from tests.asgi import post_analysis

BIG = 18 * 1024 * 1024


def call_without_reading(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any], int]:
    """Send a multipart POST whose body is never offered: (status, body, how many times the app asked for it)."""
    asked = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"-" * 65536, "more_body": True}

    multipart = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", str(BIG).encode())]
    status, body = post_analysis(app, receive, [*multipart, *headers], client=("203.0.113.7", 50000))
    return status, body, asked


def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_read(settings: Settings) -> None:
    big = settings.model_copy(update={"max_upload_bytes": 20 * 1024 * 1024})
    app = create_app(big)
    with TestClient(app):  # runs the migrations
        pass
    status, body, asked = call_without_reading(app, [])
    assert (status, body["error"]["code"], asked) == (401, "missing_api_key", 0)
    status, body, asked = call_without_reading(app, [(b"x-api-key", b"st_not-a-key")])
    assert (status, body["error"]["code"], asked) == (401, "invalid_api_key", 0)
    with session_scope(big.sqlalchemy_url) as session:
        _, derm = api_keys.create_key(session=session, role="dermatologist", name="d")
    # a valid key gets past the header check to the route (which reads the body: the caller is known)
    status, _, asked = call_without_reading(app, [(b"x-api-key", derm.encode())])
    assert status != 401 and asked > 0


def test_requests_without_a_valid_key_are_limited_per_address(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_unauthenticated_per_minute": 3, "rate_limit_per_minute": 2})
    with (
        TestClient(create_app(limited)) as client,
        TestClient(create_app(limited), client=("198.51.100.9", 1)) as other,
    ):
        with session_scope(limited.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="phone")
        statuses = [client.get("/v1/analyses/x", headers={"X-API-Key": f"st_guess{i}"}).status_code for i in range(3)]
        assert statuses == [401, 401, 401]
        blocked = client.get("/v1/analyses/x")
        assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "rate_limited"
        assert blocked.headers["RateLimit-Limit"] == "3" and blocked.headers["RateLimit-Remaining"] == "0"
        assert blocked.headers["RateLimit-Policy"] == "3;w=60"
        assert 1 <= int(blocked.headers["RateLimit-Reset"]) == int(blocked.headers["Retry-After"]) <= 60
        assert other.get("/v1/analyses/x").status_code == 401  # another address has its own bucket
        # a valid key is not held back by its address' anonymous bucket; its own limit answers the same headers
        ok = [client.get("/v1/analyses/x", headers={"X-API-Key": key}).status_code for _ in range(2)]
        assert ok == [404, 404]
        keyed = client.get("/v1/analyses/x", headers={"X-API-Key": key})
        assert keyed.status_code == 429 and keyed.headers["RateLimit-Limit"] == "2"
        assert keyed.headers["RateLimit-Reset"] == keyed.headers["Retry-After"]
