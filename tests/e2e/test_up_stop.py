"""`skintrouble up` stops everything it started when its terminal goes away (SIGHUP), not only on Ctrl-C.

Ctrl-C is covered with the whole demo in test_up_and_demo.py; here only the start and the stop, on a free port and a
temp var/ folder. Every child runs in its own session, so without the stop nothing would end them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.settings import REPO_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def proc_stats() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgid) of every process."""
    rows = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rows.append((int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])))
    return rows


def test_up_stops_every_child_group_on_sighup(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SKINTROUBLE_VAR_DIR": str(tmp_path / "var"),
        "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    groups: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the API did not answer: " + (tmp_path / "up.log").read_text()[-3000:])
        groups = {pid for pid, _, ppid, pgid in proc_stats() if ppid == up.pid and pgid == pid}
        assert len(groups) == 4  # analysis worker, training worker, beat, API: each leading its own group
        members = [pid for pid, _, _, pgid in proc_stats() if pgid in groups]
        assert len(members) >= 6  # the workers' pool children at least, besides the four leaders
        up.send_signal(signal.SIGHUP)
        up.wait(timeout=30)
        time.sleep(0.5)
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
        left = [(pid, state) for pid, state, _, pgid in proc_stats() if pgid in groups and state != "Z"]
        for pgid in groups:  # leave nothing behind, even when failing
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert left == [], f"left running after SIGHUP: {left}"
