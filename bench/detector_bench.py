"""Milliseconds per photo of `Detector.predict` (ONNX, CPU) for a 640 px and a 12 MP photo.

    .venv/bin/python bench/detector_bench.py --threads 2

Both passes (normal + mirrored, for uncertainty and flip TTA) are included: that is what serving
pays. The 12 MP photo is a valid ACNE04 photo resized to 4000x3000 (noise if the data is absent).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from detector.onnx_runtime import Detector

VALID_IMAGES = Path("/work/shared/datasets/acne04/valid/images")


def sample_photo() -> np.ndarray:
    photos = sorted(VALID_IMAGES.glob("levle2_*.jpg"))
    if not photos:
        return np.random.default_rng(0).integers(0, 255, (640, 640, 3), dtype=np.uint8)
    return cv2.cvtColor(cv2.imread(str(photos[0])), cv2.COLOR_BGR2RGB)


def time_predict(detector: Detector, photo: np.ndarray, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.predict(photo)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--cache", type=Path, default=Path("var/cache/models"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats-small", type=int, default=5)
    parser.add_argument("--repeats-large", type=int, default=2)
    args = parser.parse_args()

    detector = Detector.load(args.model, args.cache, threads=args.threads)
    card = detector.card
    small = sample_photo()
    large = cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    detector.predict(small)  # warm-up: session allocations
    print(
        f"model {card.version}  threads={args.threads}  upscale={card.upscale}  tile={card.tile_size}"
        f"  overlap={card.tile_overlap}  tta_flip={card.tta_flip}  tile_batch={card.tile_batch}"
    )
    for name, photo, repeats in (("640x640", small, args.repeats_small), ("4000x3000", large, args.repeats_large)):
        timings = time_predict(detector, photo, repeats)
        tiles = detector.predict(photo).extras["tiles"] if repeats else 0
        print(
            f"{name:>10}: median {statistics.median(timings):8.0f} ms/photo  min {min(timings):8.0f}"
            f"  (n={repeats}, {tiles} tiles x 2 passes)"
        )


if __name__ == "__main__":
    main()
