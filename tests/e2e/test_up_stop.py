"""`skintrouble up` stops everything it started when its terminal goes away (SIGHUP), not only on Ctrl-C.

Ctrl-C is covered with the whole demo in test_up_and_demo.py; here only the start and the stop, on a free port and a
temp var/ folder. Every child runs in its own session, so without the stop nothing would end them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.up import start_up, up_env, wait_for

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
    up, log = start_up(tmp_path, port, up_env(tmp_path))
    groups: set[int] = set()
    try:
        wait_for(up, f"http://127.0.0.1:{port}/healthz", tmp_path / "up.log", every=0.5)
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
