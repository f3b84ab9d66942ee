"""The analyses API beyond the round trip in test_api_contract.py: idempotency replays the same request and refuses a
different photo (SQLite and PostgreSQL), body limits, per-key rate limits (memory and shared Redis), CORS."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.errors import ApiError
from api.main import create_app
from api.rate_limit import MemoryBuckets, build_rate_limiter
from infra.db.models import Case
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from tests.conftest import encode, skin_photo

PUBLIC_KEYS = {"id", "quality", "findings", "lesion_count", "severity", "model_version", "review"}


@contextmanager
def running(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def make_key(settings: Settings, role: str = "app", name: str = "phone") -> dict[str, str]:
    with session_scope(settings.sqlalchemy_url) as session:
        _, raw = api_keys.create_key(session=session, role=role, name=name)
    return {"X-API-Key": raw}


def upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "photo.jpg", **kw: object):  # type: ignore[no-untyped-def]
    return client.post("/v1/analyses", files={"image": (name, data, "image/jpeg")}, headers=headers, **kw)


def photo_bytes(seed: int = 0) -> bytes:
    return encode(skin_photo(400, 400, seed=seed))


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The same API on the embedded database and on a live PostgreSQL (skipped locally, failed in CI if absent)."""
    if request.param == "postgresql":
        return settings.model_copy(update={"database_url": request.getfixturevalue("postgres_url")})
    return settings


# ---- the contract on both databases --------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_request_and_refuses_a_different_one(db_settings: Settings) -> None:
    with running(db_settings) as client:
        key = make_key(db_settings)
        first = upload(client, {**key, "Idempotency-Key": "upload-42"}, photo_bytes(2))
        again = upload(client, {**key, "Idempotency-Key": "upload-42"}, photo_bytes(2))
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        # another photo, a text file, or the same photo in another mode under the used key: refused, not replayed
        assert_error(
            upload(client, {**key, "Idempotency-Key": "upload-42"}, photo_bytes(3)), 422, "idempotency_key_reused"
        )
        assert_error(upload(client, {**key, "Idempotency-Key": "upload-42"}, b"hello"), 422, "idempotency_key_reused")
        other_mode = upload(client, {**key, "Idempotency-Key": "upload-42"}, photo_bytes(2), params={"mode": "async"})
        assert_error(other_mode, 422, "idempotency_key_reused")
        other = make_key(db_settings, name="other phone")  # keys are per client: no cross-client replay
        rejected = upload(client, {**other, "Idempotency-Key": "upload-42"}, b"not an image")
        assert_error(rejected, 415, "unsupported_media_type")
        # a first use refused by validation does not lock the key: the real photo then goes through under it
        accepted = upload(client, {**other, "Idempotency-Key": "upload-42"}, photo_bytes(4))
        assert accepted.status_code == 200 and accepted.json()["id"] != first.json()["id"]
    with session_scope(db_settings.sqlalchemy_url) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 2


def test_a_quality_rejected_first_use_does_not_lock_the_key(db_settings: Settings) -> None:
    import numpy as np

    dark = encode(np.full((400, 400, 3), 3, dtype=np.uint8))
    with running(db_settings) as client:
        key = {**make_key(db_settings), "Idempotency-Key": "retake"}
        refused = upload(client, key, dark)
        assert_error(refused, 422, "quality_rejected")
        assert upload(client, key, dark).json() == refused.json()  # the same request: the same answer
        retake = upload(client, key, photo_bytes(5))
        assert retake.status_code == 200, retake.text
        assert upload(client, key, photo_bytes(5)).json()["id"] == retake.json()["id"]
        assert_error(upload(client, key, dark), 422, "idempotency_key_reused")  # now the key is taken


def printed_page() -> np.ndarray:
    """A photo of printed text: no skin at all (issue 12: such photos were analysed and graded)."""
    page = np.full((640, 640, 3), 240, np.uint8)
    for row in range(30, 640, 34):
        cv2.putText(page, "lorem ipsum dolor sit amet 42", (10, row), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (25, 25, 25), 2)
    return page


def test_a_photo_that_is_not_skin_is_refused_and_nothing_is_counted_or_graded(db_settings: Settings) -> None:
    with running(db_settings) as client:
        key = make_key(db_settings)
        refused = upload(client, key, encode(printed_page()))
        error = assert_error(refused, 422, "quality_rejected")
        assert error["retake_codes"] == ["not_skin_photo"]
        assert error["hints"] == ["This does not look like a close-up of skin. Fill the frame with the affected area."]
        read = client.get(f"/v1/analyses/{error['id']}", headers=key).json()
        assert read["status"] == "rejected" and read["lesion_count"] is None and read["severity"] is None
        assert read["findings"] == []
    with session_scope(db_settings.sqlalchemy_url) as session:
        case = session.get(Case, error["id"])
        assert case is not None and case.grade is None and case.lesion_count is None and case.findings is None


def test_a_skin_coloured_texture_only_the_content_network_doubts_is_refused(settings: Settings) -> None:
    """Code-made grain in skin colours passes every colour and texture statistic; the content network
    (`quality_gate/content_cnn.py`) refuses it, and an operator's override by name turns it off."""
    from bench import gate_data as gd

    grain = encode(gd.non_skin("grain", 1001))
    with running(settings) as client:
        error = assert_error(upload(client, make_key(settings), grain), 422, "quality_rejected")
        assert error["retake_codes"] == ["not_skin_photo"]
    lenient = settings.model_copy(update={"quality_thresholds": {"max_content_logit": math.inf}})
    with running(lenient) as client:
        analysed = upload(client, make_key(lenient, name="lenient"), grain)
        assert analysed.status_code == 200, analysed.text


def test_concurrent_retries_with_one_idempotency_key_get_one_case(db_settings: Settings) -> None:
    """Retries racing each other: the unique constraint fires at the loser's insert; every request gets the
    winner's case (no 500) and the losers' photos are removed (no orphans in the store)."""
    with running(db_settings) as client:
        headers = {**make_key(db_settings), "Idempotency-Key": "racing"}
        answers: list[tuple[int, str]] = []

        def send(seed: int) -> None:
            response = upload(client, headers, photo_bytes(0))  # retries carry the same photo
            answers.append((response.status_code, response.json().get("id", response.text)))

        threads = [threading.Thread(target=send, args=(seed,)) for seed in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 3 and {status for status, _ in answers} == {200}, answers
    assert len({case_id for _, case_id in answers}) == 1
    with session_scope(db_settings.sqlalchemy_url) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    assert [p.parent.name for p in db_settings.photos_dir.rglob("*.jpg")] == [answers[0][1]]


def test_body_over_the_limit_is_refused_before_reading(settings: Settings) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 10_000})
    with running(small) as client:
        response = upload(client, make_key(small), b"\xff\xd8\xff" + b"\x00" * 200_000)
        assert_error(response, 413, "payload_too_large")
        assert upload(client, make_key(small), b"not an image").status_code == 415  # still serving


# ---- rate limits and CORS --------------------------------------------------------------------------------------


def test_rate_limit_per_key_answers_429_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    with running(limited) as client:
        first, second = make_key(limited, name="busy"), make_key(limited, name="quiet")
        statuses = [client.get("/v1/analyses/x", headers=first).status_code for _ in range(3)]
        assert statuses == [404, 404, 404]
        blocked = client.get("/v1/analyses/x", headers=first)
        error = assert_error(blocked, 429, "rate_limited")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 20 and error["retry_after"] == int(
            blocked.headers["Retry-After"]
        )
        assert client.get("/v1/analyses/x", headers=second).status_code == 404  # buckets are per key


def test_cors_preflight_allows_only_configured_origins(settings: Settings) -> None:
    cors = settings.model_copy(update={"cors_origins": ["https://app.skintrouble.example"]})
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    with running(cors) as client:
        allowed = client.options("/v1/analyses", headers={"Origin": "https://app.skintrouble.example", **preflight})
        denied = client.options("/v1/analyses", headers={"Origin": "https://evil.example", **preflight})
        simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.skintrouble.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_memory_bucket_refills_at_the_configured_rate() -> None:
    now = [1000.0]
    buckets = MemoryBuckets(per_minute=6, clock=lambda: now[0])  # one token every 10 s
    assert all(buckets.take("k").allowed for _ in range(6))
    refused = buckets.take("k")
    assert not refused.allowed and refused.retry_after == pytest.approx(10.0)
    now[0] += 10.0
    assert buckets.take("k").allowed and not buckets.take("k").allowed


def test_redis_limit_is_shared_by_every_api_process(redis_url: str) -> None:
    """Two limiters (two API processes) on one Redis share one bucket per key."""
    first, second = build_rate_limiter(4, redis_url), build_rate_limiter(4, redis_url)
    assert first is not None and second is not None
    for limiter in (first, second, first, second):
        limiter.check("key-a")
    with pytest.raises(ApiError) as err:
        second.check("key-a")
    assert err.value.status == 429 and err.value.headers and int(err.value.headers["Retry-After"]) >= 1
    first.check("key-b")  # another key has its own bucket


def test_redis_down_falls_back_to_a_per_process_limit() -> None:
    limiter = build_rate_limiter(2, "redis://127.0.0.1:1/0")
    assert limiter is not None
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(ApiError):
        limiter.check("k")
