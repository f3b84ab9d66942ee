"""`skintrouble up` started as a new user starts it (a free port, a temp var/ folder, no service URLs from the
environment, so the embedded defaults run), for the e2e tests that stop it in different ways."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from infra.settings import REPO_ROOT


def up_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a zero-setup `up`: its own var/ folder, the shared model cache, no service URLs."""
    env = {
        **os.environ,
        "SKINTROUBLE_VAR_DIR": str(tmp_path / "var"),
        "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


def start_up(tmp_path: Path, port: int, env: dict[str, str]) -> tuple[subprocess.Popen, IO[str]]:
    """`up` on `port`, its output in tmp_path/up.log (the open log is returned for the caller to close)."""
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return up, log


def wait_for(up: subprocess.Popen, url: str, log: Path, seconds: float = 120, every: float = 1.0) -> None:
    """Until `url` answers 200; fails with the log's tail if `up` exits or the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert up.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(every)
    pytest.fail(f"{url} did not answer: " + log.read_text()[-3000:])
