"""What a phone photo costs: per-photo latency by size, API memory under concurrent 12 MP uploads, throughput.

    .venv/bin/python bench/phone_photos.py --images ../shared/datasets/acne04/valid/images

1. Latency, in this process on one inference slot (`detector_threads` threads): the whole serving path of one
   upload, sanitise -> reduced decode -> quality gate -> detector -> photo pixels, for photos resized to 640 px,
   1920 px and 4032x3024 (JPEG q92), and the 12 MP one as Display P3 with its profile (the colour conversion's
   cost), p50/p95 and the ratio to 640 px.
2. Memory: an API process (uvicorn, embedded defaults, `make up`'s settings) receives `--concurrent` 12 MP
   uploads at once; its peak RSS (VmHWM) and the answers (200, or 503 `busy` past the bounded wait).
3. Throughput: 640 px uploads from 2x slots client threads for `--seconds`, as a share of what the detector
   alone does on the same cores (one thread per slot, `Detector.predict` back to back).
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import collections
import io
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_process_analysis, local_api, rss_mb  # the API process on a free loopback port

from bench import gate_data as gd

SIZES = {"640x640": (640, 640), "1920x1440": (1920, 1440), "4032x3024": (4032, 3024)}
P3 = "4032x3024 Display P3"  # the 12 MP photo as an iPhone sends it: P3 values, the profile in the JPEG


def photos_at(images: list[Path], size: tuple[int, int], display_p3: bool = False) -> list[bytes]:
    out = []
    for path in images:
        with Image.open(path) as img:
            resized = img.convert("RGB").resize(size, Image.BICUBIC)
        if display_p3:
            out.append(gd.tagged_jpeg(gd.as_display_p3(np.asarray(resized)), gd.display_p3_profile(), quality=92))
            continue
        buf = io.BytesIO()
        resized.save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def latency(images: list[Path], repeats: int, threads: int) -> dict[str, list[float]]:
    analyse = in_process_analysis(threads)

    def one(data: bytes) -> float:
        start = time.perf_counter()
        analyse(data)
        return time.perf_counter() - start

    sets = {name: photos_at(images, size) for name, size in SIZES.items()}
    sets[P3] = photos_at(images, SIZES["4032x3024"], display_p3=True)
    one(sets["640x640"][0])  # warm-up
    timings: dict[str, list[float]] = {name: [] for name in sets}
    for _ in range(repeats):  # interleaved, so background load hits every size alike
        for i in range(len(images)):
            for name in sets:
                timings[name].append(one(sets[name][i]))
    return timings


def peak_memory(base: str, key: str, pid: int, photos: list[bytes], concurrent: int) -> tuple[float, float, dict]:
    idle = rss_mb(pid)
    peak = idle
    statuses: collections.Counter[str] = collections.Counter()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.02)

    def send(i: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=300) as client:
            response = client.post("/v1/analyses", files={"image": ("p.jpg", photos[i % len(photos)], "image/jpeg")})
            code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
            statuses[f"{response.status_code} {code}".strip()] += 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [threading.Thread(target=send, args=(i,)) for i in range(concurrent)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    stop.set()
    sampler.join()
    hwm = rss_mb(pid, "VmHWM")
    return idle, max(peak, hwm), dict(statuses)


def run_threads(target: Callable[[int], None], n: int) -> float:
    """Run `target(0..n-1)` on n threads until they return; the wall seconds it took."""
    start = time.perf_counter()
    workers = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return time.perf_counter() - start


def detector_rate(photos: list[bytes], slots: int, threads: int, seconds: float) -> float:
    """Photos per second of `Detector.predict` alone, `slots` threads back to back (decoded beforehand)."""
    from detector.onnx_runtime import Detector
    from infra.settings import get_settings
    from pipelines.cases.photos import load_stored

    settings = get_settings()
    detector = Detector.load(settings.model_dir, settings.model_cache_dir, threads=threads)
    rgbs = [load_stored(p) for p in photos]
    detector.predict(rgbs[0])
    done = [0] * slots
    deadline = time.perf_counter() + seconds

    def run(slot: int) -> None:
        i = slot
        while time.perf_counter() < deadline:
            detector.predict(rgbs[i % len(rgbs)])
            done[slot] += 1
            i += slots

    return sum(done) / run_threads(run, slots)


def api_rate(base: str, key: str, photos: list[bytes], clients: int, seconds: float) -> tuple[float, dict]:
    statuses: collections.Counter[str] = collections.Counter()
    deadline = time.perf_counter() + seconds

    def run(offset: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=300) as client:
            i = offset
            while time.perf_counter() < deadline:
                response = client.post(
                    "/v1/analyses", files={"image": ("p.jpg", photos[i % len(photos)], "image/jpeg")}
                )
                statuses[str(response.status_code)] += 1
                i += clients

    return statuses["200"] / run_threads(run, clients), dict(statuses)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="folder of JPEG skin photos")
    parser.add_argument("--count", type=int, default=6, help="photos per size")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=8, help="simultaneous 12 MP uploads for the memory test")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each throughput run")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: latency,memory,throughput")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    images = sorted(args.images.glob("*.jpg"))[: args.count]

    from infra.settings import get_settings

    settings = get_settings()
    slots, threads = settings.analysis_slots, settings.threads_per_slot
    print(f"cores {settings.cores}, inference slots {slots}, detector threads per slot {threads}")

    if "latency" not in skip:
        timings = latency(images, args.repeats, threads)
        base = statistics.median(timings["640x640"])
        print("\nend-to-end latency per upload (sanitise + decode + gate + detector), one slot:")
        for name, values in timings.items():
            print(
                f"  {name:>20}: p50 {1000 * statistics.median(values):6.0f} ms  p95 {1000 * pct(values, 95):6.0f} ms"
                f"  ratio to 640 px {statistics.median(values) / base:.2f}  (n={len(values)})"
            )

    if "memory" in skip and "throughput" in skip:
        return
    big = photos_at(images, SIZES["4032x3024"])
    small = photos_at(images, SIZES["640x640"])
    with local_api() as (base_url, key, pid):
        with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=300) as client:
            client.post("/v1/analyses", files={"image": ("w.jpg", small[0], "image/jpeg")})  # warm-up
        if "memory" not in skip:
            idle, peak, statuses = peak_memory(base_url, key, pid, big, args.concurrent)
            print(f"\nAPI RSS: idle after warm-up {idle:.0f} MB, peak with {args.concurrent} concurrent 12 MP uploads")
            print(f"  {peak:.0f} MB (VmHWM); answers {statuses}")
        if "throughput" not in skip:
            rate, statuses = api_rate(base_url, key, small, 2 * slots, args.seconds)
    if "throughput" not in skip:
        alone = detector_rate(small, slots, threads, args.seconds)
        print(f"\nthroughput of 640 px uploads: API {rate:.2f}/s ({statuses}) vs detector alone {alone:.2f}/s")
        print(f"  share of the detector's rate: {rate / alone:.0%}")


if __name__ == "__main__":
    main()
