"""Milliseconds per photo for the quality gate: a 640 px photo vs the sizes a 12 MP (4000x3000) one reaches it at.

    .venv/bin/python bench/quality_gate_bench.py --repeats 30 [--photo some.jpg] [--steps] [--networks]

The service decodes a stored 12 MP JPEG at 1/4 scale (1008 x 756, `pipelines.cases.analysis.ANALYSIS_LONG_SIDE`),
at 1/2 when the skin is small in the frame; the CLI reads every pixel. Each size's cost over the 640 px cost is the
price of the downscale to the working copy alone, since every measure runs on it. Without --photo a synthetic
skin-tone image is used. `--steps` also profiles the 640 px photo (`cProfile` over the repeats) and prints the
gate's own functions by time per photo, inclusive of what they call: where a cheaper gate would have to save.
`--networks` times each small network's measure alone on the 640 px photo (its input made and the graph run; the
fastest of the repeats, so another process's load shows least): what a network adds to the gate.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from quality_gate import assess

SIZES = {  # name -> (width, height)
    "640x480": (640, 480),
    "1008x756 (12 MP at 1/4)": (1008, 756),
    "2016x1512 (12 MP at 1/2)": (2016, 1512),
    "4000x3000 (12 MP)": (4000, 3000),
}


def synthetic_photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.full((height, width, 3), (200, 150, 130), np.int16)
    base += rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    return np.clip(base, 0, 255).astype(np.uint8)


def median_ms(image: np.ndarray, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        assess(image)
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


def steps(image: np.ndarray, repeats: int, top: int = 25) -> list[tuple[str, float]]:
    """(module.function, ms per photo including callees) of the `quality_gate` functions `assess` spends most in."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeats):
        assess(image)
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (calls, primitive calls, own, cumulative, callers)
    rows = [
        (f"{Path(file).stem}.{name}", cumulative * 1000.0 / repeats)
        for (file, _, name), (_, _, _, cumulative, _) in stats.items()
        if Path(file).parent.name == "quality_gate" and name != "assess"
    ]
    return sorted(rows, key=lambda row: -row[1])[:top]


def network_ms(image: np.ndarray, repeats: int) -> dict[str, float]:
    """Fastest of `repeats` calls, ms, of each network's measure on the gate's working copies of `image`."""
    from quality_gate import blur_cnn, content_cnn, lighting_cnn
    from quality_gate.measures import max_channel, working_copies
    from quality_gate.policy import Thresholds, focus_regions
    from quality_gate.skin import skin_mask

    t = Thresholds()
    work, half = working_copies(image, t.analysis_side)
    y = cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2GRAY)
    _, face = focus_regions(skin_mask(half, t.min_skin_fraction, max_channel(half)), y.shape, t)
    calls = {
        "content (content_cnn)": lambda: content_cnn.content_logit(half),
        "lighting (lighting_cnn)": lambda: lighting_cnn.lighting_logit(half),
        "blur (blur_cnn)": lambda: blur_cnn.blur_reading(y, face),
    }
    fastest = {}
    for name, call in calls.items():
        call()  # the session is made on first use
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            timings.append((time.perf_counter() - start) * 1000.0)
        fastest[name] = min(timings)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--photo", type=Path, help="real photo to time, resized to both sizes")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (the server's setting)")
    parser.add_argument("--steps", action="store_true", help="also where the 640 px photo's time goes (cProfile)")
    parser.add_argument("--networks", action="store_true", help="also each small network's measure alone (640 px)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    if args.photo:
        source = cv2.cvtColor(cv2.imread(str(args.photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        photos = {name: cv2.resize(source, size, interpolation=cv2.INTER_CUBIC) for name, size in SIZES.items()}
    else:
        photos = {name: synthetic_photo(height, width) for name, (width, height) in SIZES.items()}
    # warm-up on every photo before timing any: the first call pays for OpenCV's lazy initialisation, and the
    # 12 MP one raises glibc's mmap threshold as a serving process's large buffers do (the detector's input tensor,
    # a few MB, after its first analysis); without it, the 640 px photo timed first pays a page fault on every
    # large temporary and reads up to 2x slower (order, not cost).
    for image in photos.values():
        assess(image)
    results = {name: median_ms(image, args.repeats) for name, image in photos.items()}
    for name, ms in results.items():
        print(f"{name:>26}: {ms:7.2f} ms/photo (median of {args.repeats}, {args.threads} OpenCV thread(s))")
    small = results["640x480"]
    for name, ms in list(results.items())[1:]:
        print(f"{'extra at ' + name.split()[0]:>26}: {ms - small:7.2f} ms")
    if args.networks:
        print("\n640x480, each network's measure alone (fastest of the repeats):")
        for name, ms in network_ms(photos["640x480"], args.repeats).items():
            print(f"{name:>40}: {ms:6.2f} ms")
    if args.steps:
        print("\n640x480, ms per photo in each of the gate's functions and what it calls (cProfile, so ~10% slower):")
        for name, ms in steps(photos["640x480"], args.repeats):
            print(f"{name:>40}: {ms:6.2f}")


if __name__ == "__main__":
    main()
