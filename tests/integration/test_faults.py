"""Failures of the services around the API: Redis, PostgreSQL and MLflow going away.

Redis down runs a real uvicorn process (Celery's configuration is per process and read once), pointed at a
closed port. A killed worker mid-task is covered by the review flow's Redis test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from detector.model_card import ModelCard
from infra.db.migrate import upgrade
from infra.db.models import Case
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import REPO_ROOT, Settings
from pipelines.mlops.model_provider import ModelProvider
from pipelines.resources import build_resources
from tests.conftest import encode, free_port, skin_photo

CLOSED_REDIS = "redis://127.0.0.1:1/0"
CLOSED_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/skintrouble"


@pytest.fixture
def api_without_redis(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str, Settings]]:
    """A uvicorn API process whose REDIS_URL points at a closed port; yields (base url, app key, settings)."""
    upgrade(settings.sqlalchemy_url)
    with session_scope(settings.sqlalchemy_url) as session:
        _, key = api_keys.create_key(session=session, role="app", name="phone")
    port = free_port()
    env = {
        **os.environ,
        "SKINTROUBLE_VAR_DIR": str(settings.var_path),
        "SKINTROUBLE_MODEL_CACHE": str(settings.model_cache_dir),
        "SKINTROUBLE_ENVIRONMENT": "test",
        "REDIS_URL": CLOSED_REDIS,
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"API did not start: {(tmp_path / 'api.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, key, settings
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


@pytest.mark.slow
def test_redis_down_async_is_503_sync_still_works_nothing_lost(api_without_redis: tuple[str, str, Settings]) -> None:
    base, key, settings = api_without_redis
    headers = {"X-API-Key": key}
    photo = encode(skin_photo(400, 400, seed=11))
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        done = client.post("/v1/analyses", files={"image": ("a.jpg", photo, "image/jpeg")})
        assert done.status_code == 200, done.text

        started = time.monotonic()
        queued = client.post("/v1/analyses", params={"mode": "async"}, files={"image": ("b.jpg", photo, "image/jpeg")})
        waited = time.monotonic() - started
        assert queued.status_code == 503, queued.text
        assert queued.json()["error"]["code"] == "queue_unavailable" and int(queued.headers["Retry-After"]) > 0
        assert waited < 20, f"a dead broker took {waited:.1f}s to report"

        assert client.get(f"/v1/analyses/{done.json()['id']}").json()["status"] == "done"  # accepted case intact
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("unavailable")
    with session_scope(settings.sqlalchemy_url) as session:  # no half-accepted case left behind
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    assert sorted(p.name for p in (settings.photos_dir / "cases").iterdir()) == [done.json()["id"]]


def test_database_down_answers_503_database_unavailable(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="phone")
        assert client.get("/v1/analyses/x", headers={"X-API-Key": key}).status_code == 404
        settings.database_url = CLOSED_POSTGRES  # the database goes away while the API is serving
        down = client.get("/v1/analyses/x", headers={"X-API-Key": key})
        upload = client.post(
            "/v1/analyses",
            files={"image": ("a.jpg", encode(skin_photo(400, 400)), "image/jpeg")},
            headers={"X-API-Key": key},
        )
        ready = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive, not ready
    for response in (down, upload):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
        assert "127.0.0.1:1" not in response.text and "psycopg" not in response.text  # no internals leak
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")


def _model_copy(tmp_path: Path, version: str) -> Path:
    """Another 'release' of the shipped weights (linked, not copied) under a new version name."""
    source = REPO_ROOT / "detector" / "weights"
    card = ModelCard.load(source)
    target = tmp_path / version
    target.mkdir()
    for name in card.files():
        (target / name).symlink_to(source / name)
    replace(card, version=version).save(target)
    return target


def test_registry_down_keeps_the_loaded_model(settings: Settings, tmp_path: Path) -> None:
    release = _model_copy(tmp_path, "release-7")
    answers: list[Path | Exception] = [release, ConnectionError("mlflow unreachable")]

    def resolver() -> Path | None:
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    provider = ModelProvider(
        default_dir=settings.model_dir, cache_dir=settings.model_cache_dir, resolver=resolver, refresh_seconds=0
    )
    assert provider.get().version == "release-7"
    assert provider.refresh() is False and provider.get().version == "release-7"  # not the shipped default


def test_registry_down_from_the_start_serves_the_shipped_model(settings: Settings) -> None:
    def resolver() -> Path | None:
        raise ConnectionError("mlflow unreachable")

    fast = settings.model_copy(update={"model_refresh_seconds": 0.0})
    with TestClient(create_app(fast, resources=build_resources(fast, resolver=resolver))) as client:
        with session_scope(fast.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="phone")
        for seed in (1, 2):
            response = client.post(
                "/v1/analyses",
                files={"image": ("a.jpg", encode(skin_photo(400, 400, seed=seed)), "image/jpeg")},
                headers={"X-API-Key": key},
            )
            assert response.status_code == 200, response.text
            assert (
                response.json()["model_version"] == json.loads((fast.model_dir / "model.json").read_text())["version"]
            )
