"""Load test over loopback: concurrent photo uploads for a bounded time; throughput, latency tail, errors, RSS.

    .venv/bin/python bench/load.py --seconds 30 --concurrency 4
    .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --key st_... --seconds 60

Without --url it starts the API itself (uvicorn, one process, embedded defaults in a temp folder, rate limit off,
the shared ONNX cache in var/cache/models) on a free loopback port and stops it afterwards. Photos are synthetic
skin JPEGs made here. Every status other than 200 counts as an error (the photos pass the quality gate).
RSS is the API process's resident memory (from /proc) after start-up + one warm-up upload, and after the run.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def make_photos(count: int, width: int, height: int) -> list[bytes]:
    from detector.synthetic import synthetic_skin_photo

    out = []
    for seed in range(count):
        buf = io.BytesIO()
        Image.fromarray(synthetic_skin_photo(9100 + seed, width, height).rgb).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def local_api(threads: int | None) -> Iterator[tuple[str, str, int]]:
    """(base url, app key, server pid) of a uvicorn process on embedded defaults in a temp folder."""
    with tempfile.TemporaryDirectory(prefix="skintrouble-load-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI")},
            "SKINTROUBLE_VAR_DIR": str(Path(tmp) / "var"),
            "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
            "SKINTROUBLE_RATE_LIMIT_PER_MINUTE": "0",
        }
        if threads:
            env["SKINTROUBLE_DETECTOR_THREADS"] = str(threads)
        os.environ.update({k: env[k] for k in ("SKINTROUBLE_VAR_DIR", "SKINTROUBLE_MODEL_CACHE")})
        from infra.db.migrate import upgrade
        from infra.db.repositories import api_keys
        from infra.db.unit_of_work import session_scope
        from infra.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        settings.var_path.mkdir(parents=True, exist_ok=True)
        upgrade(settings.sqlalchemy_url)
        with session_scope(settings.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="load-test")
        port = free_port()
        log = open(Path(tmp) / "api.log", "wb")  # noqa: SIM115 - closed below, after the server stops
        cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--port", str(port)]
        proc = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"API did not start:\n{(Path(tmp) / 'api.log').read_text()[-3000:]}")
                time.sleep(0.2)
            yield base, key, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def drive(base: str, key: str, photos: list[bytes], seconds: float, concurrency: int) -> tuple[list[float], dict]:
    """Upload back to back from `concurrency` threads until the time is up; (latencies in s, status counts)."""
    latencies: list[float] = []
    statuses: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
            i = offset
            while time.perf_counter() < deadline:
                data = photos[i % len(photos)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    status = str(
                        client.post("/v1/analyses", files={"image": ("p.jpg", data, "image/jpeg")}).status_code
                    )
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, dict(statuses)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--size", default="640x640", help="photo WIDTHxHEIGHT")
    parser.add_argument("--photos", type=int, default=8, help="distinct photos cycled through")
    parser.add_argument("--url", help="an API already running (loopback); needs --key")
    parser.add_argument("--key", help="an app-role API key for --url")
    parser.add_argument("--threads", type=int, help="SKINTROUBLE_DETECTOR_THREADS for the started API")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")
    if args.url and httpx.URL(args.url).host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only: this tool is not for load-testing other machines")
    width, height = (int(v) for v in args.size.lower().split("x"))
    photos = make_photos(args.photos, width, height)

    @contextmanager
    def target() -> Iterator[tuple[str, str, int | None]]:
        if args.url:
            yield args.url.rstrip("/"), args.key, None
        else:
            with local_api(args.threads) as started:
                yield started

    with target() as (base, key, pid):
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:  # warm-up: model load
            warm = client.post("/v1/analyses", files={"image": ("p.jpg", photos[0], "image/jpeg")})
            if warm.status_code != 200:
                raise SystemExit(f"warm-up upload failed: {warm.status_code} {warm.text[:300]}")
        rss_before = rss_mb(pid) if pid else None
        started = time.perf_counter()
        latencies, statuses = drive(base, key, photos, args.seconds, args.concurrency)
        wall = time.perf_counter() - started
        rss_after = rss_mb(pid) if pid else None

    total = len(latencies)
    errors = total - statuses.get("200", 0)
    print(f"load: {total} uploads of {args.size} JPEG in {wall:.1f}s, concurrency {args.concurrency}, {base}")
    print(f"throughput  {total / wall:.2f} req/s")
    if latencies:
        ms = [v * 1000 for v in latencies]
        print(f"latency ms  p50 {percentile(ms, 50):.0f}  p95 {percentile(ms, 95):.0f}  p99 {percentile(ms, 99):.0f}")
    print(f"errors      {errors} ({errors / max(total, 1):.1%})  statuses {statuses}")
    if rss_before is not None:
        print(f"API RSS MB  before {rss_before:.0f}  after {rss_after:.0f}  delta {rss_after - rss_before:+.0f}")


if __name__ == "__main__":
    main()
