"""What the API adds on top of inference: analysis latency through HTTP next to bare Detector.predict.

    .venv/bin/python bench/api_latency.py --requests 20

Starts the API like the load test (bench/common.local_api: uvicorn, embedded defaults, temp folder, shared ONNX cache) and, in this
process, loads the same model with the same thread setting. Requests go one at a time and alternate with a direct
`Detector.predict` on the same decoded photo, so both see the same background load on a shared machine.
The API path adds upload, decoding, the quality gate, review routing, storing the photo and the SQLite write.
Target: API p50 within 15% of bare inference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, local_api, synthetic_jpegs


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--size", default="640x640", help="photo WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads on both sides (default: ORT's)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    jpeg = synthetic_jpegs(1, width, height, first_seed=9100)[0]

    with local_api(threads=args.threads) as (base, key, _pid):
        from detector.onnx_runtime import Detector
        from infra.settings import get_settings
        from pipelines.cases.photos import decode_photo

        settings = get_settings()
        detector = Detector.load(settings.model_dir, settings.model_cache_dir, threads=args.threads)
        rgb = decode_photo(jpeg, max_pixels=settings.max_image_pixels).rgb
        api_s: list[float] = []
        bare_s: list[float] = []
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:

            def through_api() -> float:
                t0 = time.perf_counter()
                response = client.post("/v1/analyses", files={"image": ("p.jpg", jpeg, "image/jpeg")})
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    raise SystemExit(f"upload failed: {response.status_code} {response.text[:300]}")
                return elapsed

            def bare() -> float:
                t0 = time.perf_counter()
                detector.predict(rgb)
                return time.perf_counter() - t0

            through_api(), bare()  # warm-up: model load and first-run allocations on both sides
            for _ in range(args.requests):
                api_s.append(through_api())
                bare_s.append(bare())

    api_ms = [v * 1000 for v in api_s]
    bare_ms = [v * 1000 for v in bare_s]
    p50_ratio = statistics.median(api_ms) / statistics.median(bare_ms)
    print(f"api_latency: {args.requests} alternating runs, {args.size} JPEG, threads={args.threads or 'ORT default'}")
    print(f"model       {detector.version} ({REPO_ROOT.name}/detector/weights)")
    print(f"API  ms     p50 {statistics.median(api_ms):.0f}  p95 {quantile(api_ms, 95):.0f}")
    print(f"bare ms     p50 {statistics.median(bare_ms):.0f}  p95 {quantile(bare_ms, 95):.0f}  (Detector.predict)")
    print(f"overhead    p50 ratio {p50_ratio:.3f} ({(p50_ratio - 1):+.1%}; target < +15%)")
    print(
        f"            median per-request difference {statistics.median(a - b for a, b in zip(api_ms, bare_ms, strict=True)):.0f} ms"
    )


if __name__ == "__main__":
    main()
