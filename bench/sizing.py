"""Sizing: synchronous analyses per second per CPU core, in-process and through the HTTP API.

    .venv/bin/python bench/sizing.py                      # 640x640 photos, direct + API with 1 and 2 workers
    .venv/bin/python bench/sizing.py --size 1600x1200 --seconds 20 --modes api1,api2 --concurrency 4

onnxruntime runs with one intra-op thread (SKINTROUBLE_DETECTOR_THREADS=1); a uvicorn worker still runs several
analyses at once on its thread pool, so "per core" is measured, not assumed: analyses divided by the CPU seconds
the serving processes consumed (user + system, from /proc), i.e. analyses per second for each fully busy core.
`direct` times `pipelines.cases.analysis.analyze` (decode + gate + detector + routing) on one thread in this process;
`apiN` starts the API with N uvicorn workers (bench/common.local_api) on embedded defaults in a temp folder and posts the photos with 2N
(or --concurrency) client threads back to back for --seconds (or --requests in all) over loopback (upload,
decode, gate, detector, SQLite write, JSON). The client's own CPU is not counted. Photos are synthetic skin with
lesion-like spots (detector.synthetic), JPEG-encoded like an upload.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_process_analysis, local_api, synthetic_jpegs


def budget(seconds: float, requests: int) -> Callable[[], bool]:
    """Whether to send one more analysis: a fixed count when --requests is given, else until --seconds pass."""
    if requests:
        tickets = itertools.count()  # next() on a count is atomic under the GIL: safe across client threads
        return lambda: next(tickets) < requests
    deadline = time.perf_counter() + seconds
    return lambda: time.perf_counter() < deadline


def bench_direct(jpegs: list[bytes], seconds: float, requests: int) -> tuple[int, float, float, float]:
    """(analyses, wall seconds, CPU seconds, median ms) for one thread in this process."""
    one = in_process_analysis(threads=1)
    one(jpegs[0])  # warm-up
    timings = []
    cpu0, start = time.process_time(), time.perf_counter()
    more = budget(seconds, requests)
    while more():
        t0 = time.perf_counter()
        one(jpegs[len(timings) % len(jpegs)])
        timings.append(time.perf_counter() - t0)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return len(timings), elapsed, cpu, statistics.median(timings) * 1000


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (the server and its uvicorn workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_api(
    jpegs: list[bytes], seconds: float, requests: int, workers: int, concurrency: int
) -> tuple[int, float, float, float]:
    """(analyses, wall seconds, server CPU seconds, median ms per request) against uvicorn with N workers."""
    env = {"SKINTROUBLE_REVIEW_AUDIT_RATE": "0"}
    with (
        local_api(workers=workers, threads=1, env=env) as (url, key, pgid),
        httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": key}) as client,
    ):

        def post(i: int) -> float:
            t0 = time.perf_counter()
            files = {"image": ("p.jpg", jpegs[i % len(jpegs)], "image/jpeg")}
            r = client.post("/v1/analyses", files=files)
            if r.status_code not in (200, 422):
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")
            return time.perf_counter() - t0

        def loop(first: int, more: Callable[[], bool]) -> list[float]:
            """One client: post back to back while the budget lasts (the last one may end after a deadline)."""
            out, i = [], first
            while more():
                out.append(post(i))
                i += concurrency
            return out

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, range(concurrency * 2)))  # warm every worker process
            cpu0, start = group_cpu_seconds(pgid), time.perf_counter()
            more = budget(seconds, requests)
            runs = list(pool.map(loop, range(concurrency), [more] * concurrency))
            elapsed, cpu = time.perf_counter() - start, group_cpu_seconds(pgid) - cpu0
    timings = [t for run in runs for t in run]
    return len(timings), elapsed, cpu, statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--size", default="640x640", help="photo WIDTHxHEIGHT")
    parser.add_argument("--seconds", type=float, default=20, help="timed duration per mode")
    parser.add_argument("--requests", type=int, default=0, help="a fixed number of analyses per mode instead")
    parser.add_argument("--modes", default="direct,api1,api2", help="direct, apiN (N uvicorn workers)")
    parser.add_argument("--concurrency", type=int, default=0, help="client threads for apiN (default 2N)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    jpegs = synthetic_jpegs(8, width, height)
    cores = os.cpu_count() or 1
    amount = f"{args.requests} analyses" if args.requests else f"{args.seconds:.0f} s"
    print(f"{width}x{height} synthetic JPEG photos, {amount} per mode, {cores} CPU cores on this machine")
    header = f"{'mode':<6} {'clients':>7} {'done':>5} {'analyses/s':>10} {'cores busy':>10} {'per core':>9}"
    print(f"{header} {'CPU ms each':>11} {'median ms':>9}")
    for mode in args.modes.split(","):
        if mode == "direct":
            clients = 1
            done, elapsed, cpu, median = bench_direct(jpegs, args.seconds, args.requests)
        else:
            workers = int(mode.removeprefix("api"))
            clients = args.concurrency or workers * 2
            done, elapsed, cpu, median = bench_api(jpegs, args.seconds, args.requests, workers, clients)
        rate, busy, per_core, each = done / elapsed, cpu / elapsed, done / cpu, cpu / done * 1000
        print(
            f"{mode:<6} {clients:>7} {done:>5} {rate:>10.2f} {busy:>10.2f} {per_core:>9.2f} {each:>11.0f} {median:>9.0f}"
        )


if __name__ == "__main__":
    main()
