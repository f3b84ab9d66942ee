"""CPU and wall seconds per photo of `Detector.predict` at the card's serving settings.

    .venv/bin/python bench/detector_serving_cost.py --model detector/weights \
        --images /work/shared/datasets/acne04/valid/images --limit 30 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from detector.evaluation import read_rgb
from detector.onnx_runtime import Detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--cache", type=Path, default=Path("var/cache/models"))
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--conf", type=float, default=None, help="default: the card's operating threshold")
    args = parser.parse_args()

    detector = Detector.load(args.model, args.cache, threads=args.threads)
    photos = [read_rgb(p) for p in sorted(args.images.glob("*.jpg"))[: args.limit]]
    detector.predict(photos[0], conf=args.conf)  # warm-up: session allocations
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for photo in photos:
        detector.predict(photo, conf=args.conf)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    card = detector.card
    print(
        f"model={card.version} photos={len(photos)} size={photos[0].shape[1]}x{photos[0].shape[0]} "
        f"threads={args.threads} upscale={card.upscale} tile={card.tile_size} tta_flip={card.tta_flip} "
        f"iou={card.iou} max_det={card.max_det} conf={args.conf or card.operating_conf}"
    )
    print(f"cpu_s_per_photo={cpu / len(photos):.3f} wall_s_per_photo={wall / len(photos):.3f}")


if __name__ == "__main__":
    main()
