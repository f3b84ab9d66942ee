"""`skintrouble up` then `skintrouble demo`, as a new user runs them, and Ctrl-C stopping everything cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT
from tests.conftest import free_port
from tests.e2e.up import start_up, up_env, wait_for

pytestmark = pytest.mark.slow


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            child = int(status.parent.name)
            found |= {child, *children_of(child)}
    return found


def test_up_then_demo_walks_the_whole_loop_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = up_env(tmp_path, SKINTROUBLE_MODEL_REFRESH_SECONDS="5")
    up, log = start_up(tmp_path, port, env)
    try:
        wait_for(up, f"http://127.0.0.1:{port}/readyz", tmp_path / "up.log")
        printed = (tmp_path / "up.log").read_text()
        assert f"http://127.0.0.1:{port}" in printed and "dermatologist" in printed and "ml-engineer" in printed

        demo = subprocess.run(
            [sys.executable, "-m", "api.cli", "demo", "--url", f"http://127.0.0.1:{port}"],
            cwd=REPO_ROOT,
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        text = demo.stdout
        # the dark photo is refused as too_dark alone: its texture spans under blur_cnn.MIN_SPREAD grey levels, too
        # dark for the blur network to read, so its logit is not judged (`blur_unreadable`)
        assert "dark: 422 quality_rejected ['too_dark']" in text, text[-3000:]
        assert "cases reviewed" in text and "registered version" in text
        assert "analyses now report model_version retrain-" in text
        assert "rolled back release" in text
        family = children_of(up.pid)
        assert len(family) >= 3  # api, worker (and its pool), beat
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            pytest.fail("`up` did not stop within 30 s of Ctrl-C")
        log.close()
    time.sleep(1)
    survivors = [
        pid
        for pid in family
        if Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4]
    ]
    assert survivors == [], f"processes left running after Ctrl-C: {survivors}"
