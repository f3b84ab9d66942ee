"""Hostile uploads at the HTTP layer that test_api_contract.py does not reach: bodies streamed without a
Content-Length (counted chunk by chunk, never buffered whole), and the decompression bomb's memory as RSS.

The file-level corpus lives in tests/unit/test_photos.py; its API round trip in test_api_contract.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.body_limit import MULTIPART_SLACK
from api.main import create_app
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from tests.asgi import post_analysis
from tests.conftest import encode, skin_photo
from tests.unit.test_photos import png_bomb

CHUNK = 64 * 1024


def _asgi_upload(app: Any, key: str, chunks: int) -> tuple[int, dict[str, Any], int]:
    """POST a multipart body of `chunks` x 64 KiB without Content-Length; returns status, JSON body, chunks read."""
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > chunks:
            return {"type": "http.request", "body": f"\r\n--{boundary}--\r\n".encode(), "more_body": False}
        body = (head if pulled == 1 else b"") + b"\xff" * CHUNK
        return {"type": "http.request", "body": body, "more_body": True}

    headers = [
        (b"x-api-key", key.encode()),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"transfer-encoding", b"chunked"),
    ]
    status, body = post_analysis(app, receive, headers)
    return status, body, pulled


def test_streamed_body_is_cut_off_at_the_limit(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_upload_bytes": 256 * 1024})
    app = create_app(limited)
    with TestClient(app), session_scope(limited.sqlalchemy_url) as session:  # lifespan runs the migrations
        _, key = api_keys.create_key(session=session, role="app", name="phone")
    status, body, pulled = _asgi_upload(app, key, chunks=1000)  # 64 MB offered
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    limit_chunks = (limited.max_upload_bytes + MULTIPART_SLACK) // CHUNK + 1
    assert pulled <= limit_chunks + 1, f"read {pulled} chunks; the limit is {limit_chunks}"


def test_bomb_upload_keeps_memory_bounded_and_the_server_serving(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="phone")
        headers = {"X-API-Key": key}
        rss_before = _rss_bytes()
        for size in ((30_000, 30_000), (8_000, 8_000)):
            bomb = client.post(
                "/v1/analyses", files={"image": ("b.png", png_bomb(*size), "image/png")}, headers=headers
            )
            assert bomb.status_code == 413 and bomb.json()["error"]["code"] == "image_too_large"
        assert _rss_bytes() - rss_before < 100 * 1024 * 1024  # one decoded 8000^2 frame alone is 192 MB
        ok = client.post(
            "/v1/analyses", files={"image": ("p.jpg", encode(skin_photo(400, 400)), "image/jpeg")}, headers=headers
        )
        assert ok.status_code == 200, ok.text


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096
