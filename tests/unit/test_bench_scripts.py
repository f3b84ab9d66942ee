"""Every benchmark script still imports: a script that names a helper the code no longer has fails here, not months
later when someone reruns a figure (bench/detector_dump_passes.py did, after scale normalisation)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# imported in a process of its own: Locust monkey-patches the standard library (gevent) as it loads
OWN_PROCESS = {"locustfile"}


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "bench").glob("*.py")))
def test_bench_script_imports(name: str) -> None:
    if name in OWN_PROCESS:
        code = f"import bench.{name} as m; assert m.__doc__"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return
    module = importlib.import_module(f"bench.{name}")
    assert module.__doc__, f"bench/{name}.py should open with a docstring saying what it measures and how to run it"
