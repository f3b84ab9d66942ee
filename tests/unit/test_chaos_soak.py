"""The chaos soak's own arithmetic and the log line it counts analyses by (bench/chaos_soak.py; the soak itself is
run by hand: `bench/chaos_soak.py --minutes 2`)."""

from __future__ import annotations

import logging
import sys

import pytest

from infra.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import chaos_soak


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert chaos_soak.percentile(values, 99) == 99.0 and chaos_soak.percentile(values, 50) == 50.0
    assert chaos_soak.percentile([3.0], 99) == 3.0


def test_the_soak_recognises_the_workers_analysis_line(caplog: pytest.LogCaptureFixture) -> None:
    """The format string in pipelines/cases/lifecycle.py, as a worker writes it."""
    import pipelines.cases.lifecycle as jobs

    with caplog.at_level(logging.INFO, logger=jobs.log.name):
        jobs.log.info("case %s analysed: %s", "ab" * 16, "done")
    match = chaos_soak.ANALYSED.search(caplog.text)
    assert match is not None and match.groups() == ("ab" * 16, "done")
    source = (REPO_ROOT / "pipelines" / "cases" / "lifecycle.py").read_text()
    assert 'log.info("case %s analysed: %s", case.id, case.status)' in source
