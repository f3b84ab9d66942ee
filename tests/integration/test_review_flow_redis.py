"""Upload -> real Celery worker on Redis -> review queue -> claim -> label; and no case lost to a killed worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from infra.db.migrate import upgrade
from infra.db.models import Case, Label
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import REPO_ROOT, Settings, get_settings
from infra.storage import open_store
from pipelines.cases.stale import requeue_stale
from pipelines.tasks.app import build_config, celery_app, enqueue_task
from tests.conftest import encode, skin_photo

pytestmark = pytest.mark.slow


def _drop_broker_connections() -> None:
    """Celery caches its broker connection pool, and `close()` skips a pool with no connection checked out, so a
    broker change between tests would still send to the old one: drop the pools by hand (test-only)."""
    celery_app._pool = None  # kombu keeps per-URL pools globally; a new URL gets its own on next use
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_settings(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on live Redis that queue every analysed case (audit rate 1) for one review; the test process's
    Celery app is pointed at this broker for the test and put back afterwards."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SKINTROUBLE_REVIEW_AUDIT_RATE", "1.0")
    monkeypatch.setenv("SKINTROUBLE_REVIEW_DOUBLE_RATE", "0.0")
    monkeypatch.setenv("SKINTROUBLE_BROKER_VISIBILITY_TIMEOUT", "1")
    monkeypatch.setenv("SKINTROUBLE_DETECTOR_THREADS", "1")
    get_settings.cache_clear()
    configured = get_settings()
    upgrade(configured.sqlalchemy_url)
    config = build_config()
    previous = {name: celery_app.conf.get(name) for name in config}
    celery_app.conf.update(config)
    _drop_broker_connections()
    yield configured
    _drop_broker_connections()
    celery_app.conf.update(previous)
    get_settings.cache_clear()


@pytest.fixture
def start_worker(redis_settings: Settings, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `python -m api.cli worker` subprocesses (own process group, so a kill takes the pool child too)."""
    workers: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(workers)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker", "--queues", "analysis"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(proc)
        return proc

    yield start
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for log in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def case_status(settings: Settings, case_id: str) -> str:
    with session_scope(settings.sqlalchemy_url) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.status


def test_async_upload_is_analysed_queued_claimed_and_labelled(
    redis_settings: Settings, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    start_worker()
    with session_scope(redis_settings.sqlalchemy_url) as session:
        _, app_key = api_keys.create_key(session=session, role="app", name="phone")
        _, derm_key = api_keys.create_key(session=session, role="dermatologist", name="derm")
    with TestClient(create_app(redis_settings)) as client:
        photo = encode(skin_photo(640, 640, seed=4))
        accepted = client.post(
            "/v1/analyses?mode=async",
            headers={"X-API-Key": app_key},
            files={"image": ("face.jpg", photo, "image/jpeg")},
        )
        assert accepted.status_code == 202, accepted.text
        case_id = accepted.json()["id"]
        wait_for(lambda: case_status(redis_settings, case_id) != "pending", 120, "the worker's analysis")
        analysis = client.get(f"/v1/analyses/{case_id}", headers={"X-API-Key": app_key}).json()
        assert analysis["status"] == "done" and analysis["review"]["queued"] is True

        derm = {"X-API-Key": derm_key}
        claimed = client.post("/v1/review/claim", headers=derm)
        assert claimed.status_code == 200 and claimed.json()["id"] == case_id
        boxes = [{"label": "lesion", "box": [10.0, 10.0, 40.0, 44.0]}]
        labelled = client.post(
            f"/v1/review/cases/{case_id}/labels",
            headers=derm,
            json={"verdict": "corrected", "grade": 1, "boxes": boxes},
        )
        assert labelled.status_code == 201, labelled.text
    with session_scope(redis_settings.sqlalchemy_url) as session:
        (label,) = session.scalars(select(Label).where(Label.case_id == case_id)).all()
        assert label.boxes == boxes and label.model_version == analysis["model_version"]


def _started_tasks(redis_url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        metas = [client.get(key) for key in client.scan_iter("celery-task-meta-*")]
    finally:
        client.close()
    return [m["task_id"] for m in (json.loads(raw) for raw in metas if raw) if m.get("status") == "STARTED"]


def _pending_case(settings: Settings) -> str:
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    with session_scope(settings.sqlalchemy_url) as session:
        case = Case(status="pending", width=640, height=640)
        session.add(case)
        session.flush()
        case.photo_key = f"cases/{case.id}/photo.jpg"
        store.put(case.photo_key, encode(skin_photo(640, 640, seed=5)))
        return case.id


def test_a_worker_killed_mid_task_loses_no_case(
    redis_settings: Settings, redis_url: str, start_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """acks_late keeps the message unacknowledged while the task runs; after SIGKILL a new worker gets it back
    once the (test-short) visibility timeout has passed."""
    case_id = _pending_case(redis_settings)
    enqueue_task("analysis.analyze_case", case_id)
    first = start_worker()
    wait_for(lambda: bool(_started_tasks(redis_url)), 60, "the task to start", every=0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert case_status(redis_settings, case_id) == "pending", "the task finished before the kill: inconclusive"

    start_worker()
    wait_for(lambda: case_status(redis_settings, case_id) != "pending", 120, "redelivery to the new worker")
    assert case_status(redis_settings, case_id) == "done"


def test_requeue_stale_resends_only_old_pending_cases(settings: Settings) -> None:
    """The beat safety net for transports that drop unacked messages (SQLite) or redeliver late."""
    upgrade(settings.sqlalchemy_url)
    now = datetime.now(UTC)
    with session_scope(settings.sqlalchemy_url) as session:
        old = Case(status="pending", width=1, height=1, created_at=now - timedelta(minutes=30))
        fresh = Case(status="pending", width=1, height=1, created_at=now - timedelta(seconds=30))
        finished = Case(status="done", width=1, height=1, created_at=now - timedelta(hours=2))
        session.add_all([old, fresh, finished])
    sent: list[str] = []
    resent = requeue_stale(database_url=settings.sqlalchemy_url, older_than_seconds=600, send=sent.append, now=now)
    assert resent == sent == [old.id]
