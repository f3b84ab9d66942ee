"""What the bench scripts share: synthetic upload photos, a free loopback port, and an API process of their own
(uvicorn on embedded defaults in a temporary var/ folder, SQLite, rate limit off, the shared ONNX cache in
var/cache/models) with its memory. Scripts run from the repository root with `.venv/bin/python bench/<name>.py`.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def synthetic_jpegs(count: int, width: int, height: int, first_seed: int = 7000) -> list[bytes]:
    """Skin-like photos with lesion-like spots (detector.synthetic), JPEG-encoded like an upload."""
    from detector.synthetic import synthetic_skin_photo

    out = []
    for seed in range(first_seed, first_seed + count):
        buf = io.BytesIO()
        Image.fromarray(synthetic_skin_photo(seed, width, height).rgb).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def in_process_analysis(threads: int | None) -> Callable[[bytes], None]:
    """One upload analysed in this process as the API does it (sanitise + decode, gate, detector, routing)."""
    from detector.onnx_runtime import Detector
    from infra.settings import get_settings
    from pipelines.cases.analysis import analyze_jpeg, thresholds_from
    from pipelines.cases.photos import decode_photo
    from pipelines.cases.routing import RoutingPolicy

    settings = get_settings()
    detector = Detector.load(settings.model_dir, settings.model_cache_dir, threads=threads)
    thresholds, policy = thresholds_from(settings), RoutingPolicy.from_settings(settings)

    def analyse(data: bytes) -> None:
        photo = decode_photo(data, max_pixels=settings.max_image_pixels)
        analyze_jpeg(
            photo.jpeg,
            photo_size=(photo.width, photo.height),
            case_id="bench",
            detector=detector,
            thresholds=thresholds,
            policy=policy,
            embedding_check=settings.embedding_ood_check,
        )

    return analyse


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process from /proc (`VmHWM` for its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def local_api(
    *, workers: int = 1, threads: int | None = None, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str, int]]:
    """(base url, app key, server pid) of uvicorn on a free loopback port, in its own process group (pid == pgid,
    so its workers' CPU can be summed and all of them stopped at once); its log is shown if it fails to start."""
    from infra.db.migrate import upgrade
    from infra.db.repositories import api_keys
    from infra.db.unit_of_work import session_scope

    with tempfile.TemporaryDirectory(prefix="skintrouble-bench-") as tmp:
        server_env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI")},
            "SKINTROUBLE_VAR_DIR": tmp,
            "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
            "SKINTROUBLE_RATE_LIMIT_PER_MINUTE": "0",
            "SKINTROUBLE_FOLLOW_REGISTRY": "false",
            **({"SKINTROUBLE_DETECTOR_THREADS": str(threads)} if threads else {}),
            **(env or {}),
        }
        database = f"sqlite:///{tmp}/skintrouble.db"  # where the server's settings put it for this var/ folder
        upgrade(database)
        with session_scope(database) as session:
            _, key = api_keys.create_key(session=session, role="app", name="bench")
        port = free_port()
        log_path = Path(tmp) / "api.log"
        cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--port", str(port)]
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*cmd, "--workers", str(workers), "--log-level", "warning"],
                cwd=REPO_ROOT,
                env=server_env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"API did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)
            yield base, key, server.pid
        finally:
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
