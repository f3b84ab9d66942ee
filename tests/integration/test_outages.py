"""Faults: Redis down, PostgreSQL down, MLflow down. Clear 503s with Retry-After, nothing accepted is lost,
and what can keep working keeps working."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infra.db.repositories.api_keys import create_key
from infra.db.unit_of_work import session_scope
from infra.settings import Settings, get_settings
from tests.conftest import encode, skin_photo


def app_with(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    from api.main import create_app

    current = get_settings()
    return create_app(current), current


# Redis down (async 503, sync still 200, nothing half-stored) runs in a fresh server process in test_faults.py:
# Celery reads its broker once per process, so an in-process app here would reuse an earlier test's broker.


def test_postgres_down_answers_503_with_a_clear_code(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = app_with(monkeypatch, DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with TestClient(app) as client:
        r = client.post(
            "/v1/analyses",
            files={"image": ("p.jpg", encode(skin_photo()), "image/jpeg")},
            headers={"X-API-Key": "st_x"},
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
        assert r.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")


def test_mlflow_down_serving_continues_on_the_shipped_model(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, current = app_with(
        monkeypatch,
        SKINTROUBLE_FOLLOW_REGISTRY="true",
        MLFLOW_TRACKING_URI="http://127.0.0.1:1",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="2",
    )
    with TestClient(app) as client:
        with session_scope(current.sqlalchemy_url) as session:
            key = create_key(session=session, role="app", name="phone")[1]
        r = client.post(
            "/v1/analyses",
            files={"image": ("p.jpg", encode(skin_photo(seed=5)), "image/jpeg")},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 200, r.text
        assert r.json()["model_version"].startswith("acne04-")
