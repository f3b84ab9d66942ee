"""Shared fixtures: isolated settings per test, an API client, API keys, synthetic photos, live services.

Under CI=true the live Redis and PostgreSQL are required: a missing service fails the test, never skips it.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infra.settings import REPO_ROOT, Settings, get_settings
from pipelines.cases.routing import RoutingPolicy

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_BASE = os.environ.get("SKINTROUBLE_TEST_REDIS", "redis://127.0.0.1:6379")
POSTGRES_BASE = os.environ.get("SKINTROUBLE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


def service_missing(what: str, exc: Exception) -> None:
    """Fail under CI, skip on a laptop without the service."""
    message = f"{what} is not reachable: {type(exc).__name__}: {exc}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def skin_photo(width: int = 640, height: int = 640, seed: int = 0, spots: int = 25) -> np.ndarray:
    """A synthetic close-up of skin: even skin tone, fine texture and reddish spots (RGB uint8)."""
    rng = np.random.default_rng(seed)
    base = np.array([205, 150, 128], dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shading = 1.0 - 0.08 * ((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2)
    img = base[None, None, :] * shading[..., None]
    img += rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    scale = max(width, height) / 640
    for _ in range(spots):
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        r = rng.uniform(6, 14) * scale
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
        img[mask] = img[mask] * np.array([1.0, 0.7, 0.72], dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def natural_skin(width: int = 640, height: int = 480, seed: int = 0, contrast: float = 0.25) -> np.ndarray:
    """Skin-coloured texture with a natural image's 1/f spectrum (RGB uint8): detail at every scale, as a photo
    has, so blur takes away what a camera's would; `skin_photo`'s pixel noise has none below one pixel's scale."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    field /= field.std()
    img = np.array([205, 150, 128], np.float32) * np.exp(contrast * field)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str = "JPEG", **save_args: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **save_args)
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Embedded defaults in a fresh var/ folder; production switches cleared."""
    for name in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"SKINTROUBLE_{name}", raising=False)
    monkeypatch.setenv("SKINTROUBLE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SKINTROUBLE_ENVIRONMENT", "test")
    # following the registry is exercised by the MLOps tests; elsewhere the shipped model is served
    monkeypatch.setenv("SKINTROUBLE_FOLLOW_REGISTRY", "false")
    # ONNX exports are shared across tests and runs: exporting costs seconds, the cache key is the weights' digest
    monkeypatch.setenv("SKINTROUBLE_MODEL_CACHE", str(REPO_ROOT / "var" / "cache" / "models"))
    # a loaded CI machine can take seconds per analysis: only the pool's own test asks for a short wait
    monkeypatch.setenv("SKINTROUBLE_BUSY_WAIT_SECONDS", "120")
    get_settings.cache_clear()
    s = get_settings()
    s.var_path.mkdir(parents=True, exist_ok=True)
    yield s
    get_settings.cache_clear()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis db index of our own for this test, flushed before and after."""
    import redis

    db = 8 + (uuid.uuid4().int % 7)
    url = f"{REDIS_BASE}/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except Exception as exc:
        service_missing("Redis", exc)
    yield url
    client.flushdb()
    client.close()


def free_port() -> int:
    """A free loopback port for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def own_postgres_database(prefix: str) -> Iterator[str]:
    """Create a PostgreSQL database for one test and drop it after (fails under CI when PostgreSQL is missing)."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{POSTGRES_BASE}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", exc)
    try:
        yield f"{POSTGRES_BASE}/{name}"
    finally:
        from infra.db.engine import get_engine

        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of our own, created for this test and dropped after."""
    with own_postgres_database("skintrouble_test") as url:
        yield url


def routing_policy(**changes: float) -> RoutingPolicy:
    """The default routing policy (from `Settings`, its one home) with some thresholds changed."""
    return replace(RoutingPolicy.from_settings(Settings()), **changes)
