"""Load test on Locust: simulated phones upload synthetic photos back to back; Locust prints requests/s, the
latency percentiles and every failure, and this file adds the API process's memory before and after.

    .venv/bin/locust -f bench/locustfile.py --headless -u 4 -r 4 -t 30s
    .venv/bin/locust -f bench/locustfile.py --headless -u 8 -r 2 -t 60s --host http://127.0.0.1:8000 --api-key st_...
    .venv/bin/locust -f bench/locustfile.py --headless -u 4 -r 4 -t 30s --photo-size 1920x1440 --csv var/load

Without --host it starts the API itself (bench/common.local_api: uvicorn, one process, embedded defaults in a
temporary folder, rate limit off) and stops it afterwards; --host must be on loopback and needs an app-role key
(--api-key or SKINTROUBLE_LOAD_KEY). Every answer other than 200 is a failure (the photos pass the quality gate).
RSS is the started API's resident memory after start-up plus one warm-up upload, and when the run stops.
"""

from __future__ import annotations

import itertools
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from locust import HttpUser, constant, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LOOPBACK, local_api, rss_mb, synthetic_jpegs

UPLOAD = "/v1/analyses"


@dataclass
class Run:
    """What the event hooks set up for the users: the photos, the key and, when we started it, the API."""

    photos: list[bytes] = field(default_factory=list)
    key: str = ""
    pid: int | None = None
    rss_before: float = float("nan")
    rss_after: float = float("nan")
    servers: ExitStack = field(default_factory=ExitStack)


RUN = Run()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--api-key", env_var="SKINTROUBLE_LOAD_KEY", default="", help="app-role key for --host")
    parser.add_argument("--photo-size", default="640x640", help="synthetic photo WIDTHxHEIGHT")
    parser.add_argument("--photo-count", type=int, default=8, help="distinct photos cycled through")
    parser.add_argument("--detector-threads", type=int, default=0, help="onnxruntime threads of the started API")


@events.init.add_listener
def _start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:  # imported by a test or a tool, not run by `locust`
        return
    width, height = (int(v) for v in options.photo_size.lower().split("x"))
    RUN.photos = synthetic_jpegs(options.photo_count, width, height, first_seed=9100)
    if environment.host:
        if httpx.URL(environment.host).host not in LOOPBACK:
            raise SystemExit("loopback only: this tool is not for load-testing other machines")
        if not options.api_key:
            raise SystemExit("--host needs --api-key (or SKINTROUBLE_LOAD_KEY)")
        RUN.key = options.api_key
    else:
        base, RUN.key, RUN.pid = RUN.servers.enter_context(local_api(threads=options.detector_threads or None))
        environment.host = base
    with httpx.Client(base_url=environment.host, headers={"X-API-Key": RUN.key}, timeout=120) as client:
        warm = client.post(UPLOAD, files={"image": ("p.jpg", RUN.photos[0], "image/jpeg")})  # model load
    if warm.status_code != 200:
        RUN.servers.close()
        raise SystemExit(f"warm-up upload failed: {warm.status_code} {warm.text[:300]}")
    if RUN.pid:
        RUN.rss_before = rss_mb(RUN.pid)


@events.test_stop.add_listener
def _measure(**_: Any) -> None:
    if RUN.pid:
        RUN.rss_after = rss_mb(RUN.pid)


@events.quit.add_listener
def _report(**_: Any) -> None:
    """After Locust's own tables: the API's memory, then stop the API we started."""
    if RUN.pid:
        delta = RUN.rss_after - RUN.rss_before
        print(f"API RSS MB  before {RUN.rss_before:.0f}  after {RUN.rss_after:.0f}  delta {delta:+.0f}")
    RUN.servers.close()


class Phone(HttpUser):
    """Uploads one photo after another, no think time: the API's capacity, not a realistic arrival rate."""

    wait_time = constant(0)
    _ids = itertools.count()

    def on_start(self) -> None:
        self.offset = next(self._ids)

    @task
    def upload(self) -> None:
        photo = RUN.photos[self.offset % len(RUN.photos)]
        self.offset += 1
        files = {"image": ("p.jpg", photo, "image/jpeg")}
        with self.client.post(
            UPLOAD, files=files, headers={"X-API-Key": RUN.key}, timeout=120, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.text[:120]}")
