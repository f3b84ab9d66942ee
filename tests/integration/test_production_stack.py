"""The production configuration without containers: an MLflow server on PostgreSQL, then the API, a worker and beat
as separate processes on PostgreSQL + Redis + that server, exactly as compose/k8s wire them (environment only).

Sync and async uploads are served, the worker completes the async case, /readyz reports every check ok, the model
served comes from the MLflow registry, a revoked key stops working on the live API, and SIGTERM (what Docker and
Kubernetes send) stops every process with nothing left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.db.engine import get_engine
from infra.db.migrate import upgrade
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import REPO_ROOT, Settings, get_settings
from tests.conftest import encode, free_port, own_postgres_database, skin_photo

pytestmark = [pytest.mark.slow, pytest.mark.services]


def wait_for(predicate: Callable[[], Any], seconds: float, what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} not within {seconds:.0f} s\n{logs()}")


@pytest.fixture
def mlflow_database() -> Iterator[str]:
    """MLflow keeps its own schema (and its own alembic_version table): a database of its own, as in compose."""
    with own_postgres_database("skintrouble_mlflow") as url:
        yield url


class Stack:
    """Processes started in their own session each, so a stop can check that the whole group is gone."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            args, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {proc.poll()}):\n{(self.folder / f'{name}.log').read_text(errors='replace')[-2500:]}"
            for name, proc in self.procs.items()
        )

    def assert_running(self) -> None:
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        assert not dead, f"exited early: {dead}\n{self.logs()}"

    def stop(self, seconds: float) -> tuple[dict[str, int | None], list[str]]:
        """SIGTERM every process (ours to the main pid only, as Docker and Kubernetes do; MLflow's launcher does
        not pass it on, so its whole group) and wait: (exit codes, names whose process group outlived them); the leftovers
        are then killed so a failure leaves nothing running."""
        for name, proc in self.procs.items():
            if proc.poll() is None:
                if name == "mlflow":
                    os.killpg(proc.pid, signal.SIGTERM)
                else:
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + seconds
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[name] = None
        time.sleep(0.5)
        left = [name for name, proc in self.procs.items() if group_alive(proc.pid)]
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: a worker's pool children included
        return codes, left


def group_alive(pgid: int) -> bool:
    """A live (non-zombie) process in the group: zombies re-parented to a PID 1 that does not reap them are gone."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@pytest.fixture
def production_env(
    settings: Settings,
    postgres_url: str,
    redis_url: str,
    mlflow_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The environment compose and k8s give the app, pointed at the live services; also applied to this process."""
    port = free_port()
    values = {
        "SKINTROUBLE_ENVIRONMENT": "production",
        "SKINTROUBLE_METRICS_TOKEN": "scrape-token-for-the-test",
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
        "SKINTROUBLE_FOLLOW_REGISTRY": "true",
        "SKINTROUBLE_DETECTOR_THREADS": "1",
        "SKINTROUBLE_MODEL_REFRESH_SECONDS": "2",
        "SKINTROUBLE_REVIEW_AUDIT_RATE": "0",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_DB": mlflow_database, "MLFLOW_PORT": str(port)}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # MLflow's GenAI job runners: unused, 7 processes
    yield env
    get_engine.cache_clear()
    get_settings.cache_clear()


def test_api_worker_beat_on_postgres_redis_and_an_mlflow_server(production_env: dict[str, str], tmp_path: Path) -> None:
    env = production_env
    stack = Stack(tmp_path, env)
    base = "http://127.0.0.1:8000"
    try:
        artifacts = tmp_path / "mlflow-artifacts"
        stack.start(
            "mlflow",
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            env["MLFLOW_DB"],
            "--default-artifact-root",
            artifacts.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            env["MLFLOW_PORT"],
            "--workers",
            "1",
        )
        # the application schema and a key while MLflow starts (migrations are idempotent: the API runs them too)
        settings = get_settings()
        assert settings.environment == "production" and settings.sqlalchemy_url.startswith("postgresql")
        upgrade(settings.sqlalchemy_url)
        with session_scope(settings.sqlalchemy_url) as session:
            app_key_row, app_key = api_keys.create_key(session=session, role="app", name="prod-test")
            _, ml_key = api_keys.create_key(session=session, role="ml-engineer", name="prod-test")
            old_prefix = app_key_row.prefix
        api_port = free_port()
        base = f"http://127.0.0.1:{api_port}"
        cli = [sys.executable, "-m", "api.cli"]
        stack.start("worker", *cli, "worker", "--queues", "analysis,review")
        stack.start("beat", *cli, "beat")
        mlflow_url = env["MLFLOW_TRACKING_URI"]
        wait_for(lambda: httpx.get(f"{mlflow_url}/health", timeout=2).status_code == 200, 75, "MLflow", stack.logs)

        # the shipped model becomes `release` in the PostgreSQL-backed registry, as `make up` does embedded
        from pipelines.mlops.registry import Registry
        from pipelines.mlops.retraining import bootstrap_release

        with session_scope(settings.sqlalchemy_url) as session:
            release = bootstrap_release(session=session, registry=Registry.from_settings(settings), settings=settings)
        stack.start("api", *cli, "serve", "--port", str(api_port))

        def ready() -> dict[str, Any] | None:
            stack.assert_running()
            r = httpx.get(f"{base}/readyz", timeout=5)
            return r.json() if r.status_code == 200 else None

        readiness = wait_for(ready, 60, "/readyz 200", stack.logs)
        assert readiness["checks"]["database"] == "ok" and readiness["checks"]["broker"] == "ok"
        assert readiness["checks"]["model"]  # the version served
        app_headers = {"X-API-Key": app_key}
        client = httpx.Client(base_url=base, timeout=60)

        photo = encode(skin_photo(800, 600, seed=11))
        sync = client.post("/v1/analyses", headers=app_headers, files={"image": ("a.jpg", photo, "image/jpeg")})
        assert sync.status_code == 200, sync.text
        assert sync.json()["status"] == "done" and sync.json()["lesion_count"] >= 0

        pending = client.post(
            "/v1/analyses",
            params={"mode": "async"},
            headers=app_headers,
            files={"image": ("b.jpg", photo, "image/jpeg")},
        )
        assert pending.status_code == 202, pending.text
        location = pending.headers["Location"]

        def completed() -> dict[str, Any] | None:
            stack.assert_running()
            body = client.get(location, headers=app_headers).json()
            return body if body["status"] != "pending" else None

        done = wait_for(completed, 60, "the worker completing the async case", stack.logs)
        assert done["status"] == "done" and done["lesion_count"] == sync.json()["lesion_count"]

        models = client.get("/v1/models", headers={"X-API-Key": ml_key})
        assert models.status_code == 200, models.text
        assert models.json()["aliases"]["release"] == release
        assert done["model_version"] == models.json()["serving"]  # worker and API serve the registry's release

        # key rotation as docs/deployment.md tells it: the revoked key is refused at once by the running API
        revoke = subprocess.run(
            [*cli, "keys", "revoke", old_prefix], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert revoke.returncode == 0, revoke.stderr[-2000:]
        refused = client.post("/v1/analyses", headers=app_headers, files={"image": ("c.jpg", photo, "image/jpeg")})
        assert refused.status_code == 401
        again = subprocess.run(
            [*cli, "keys", "revoke", old_prefix], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1 and "0 active keys" in again.stderr
        final = client.get("/readyz")
        assert final.status_code == 200 and all(v == "ok" for k, v in final.json()["checks"].items() if k != "model")
        client.close()
        stack.assert_running()
    finally:
        codes, left = stack.stop(seconds=25)
    logs = stack.logs()
    assert all(code is not None for code in codes.values()), f"not stopped by SIGTERM within 25 s: {codes}\n{logs}"
    # a clean stop: exit 0, or re-raised SIGTERM after the graceful path (uvicorn does that) - never SIGKILL
    for name in ("api", "worker", "beat"):
        assert codes[name] in (0, -signal.SIGTERM), f"{name} exited {codes[name]}\n{logs}"
    assert "Application shutdown complete" in (tmp_path / "api.log").read_text()
    assert "Warm shutdown" in (tmp_path / "worker.log").read_text()
    assert left == [], f"processes left behind: {left}"
