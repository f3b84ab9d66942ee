"""Dump the serving Detector's normal and mirrored passes on a YOLO split, for offline lever studies.

One inference run per upscale/tile setting; fusion (flip TTA), NMS IoU, operating threshold and grade
bands are then compared offline by `bench/detector_levers.py` without running the network again.

    .venv/bin/python bench/detector_dump_passes.py --data /work/shared/datasets/acne04/valid \
        --model detector/weights --upscale 1.5 --out var/experiments/passes-u1.5.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from detector.model_card import ModelCard
from detector.onnx_runtime import Detector, _to_photo, _unflip
from detector.scale import apply_plan

FLOOR = 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder with images/ (YOLO layout)")
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--cache", type=Path, default=Path("var/cache/onnx"))
    parser.add_argument("--upscale", type=float, default=1.0)
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--tile-overlap", type=float, default=None)
    parser.add_argument("--max-det", type=int, default=None)
    parser.add_argument("--iou", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    card = ModelCard.load(args.model)
    changes: dict[str, object] = {"upscale": args.upscale}
    if args.tile_size:
        changes["tile_size"] = args.tile_size
    if args.max_det:
        changes["max_det"] = args.max_det
    if args.iou:
        changes["iou"] = args.iou
    if args.tile_overlap is not None:
        changes["tile_overlap"] = args.tile_overlap
    card = dataclasses.replace(card, **changes)
    with tempfile.TemporaryDirectory() as tmp:
        for name in card.files():
            shutil.copy2(args.model / name, Path(tmp) / name)
        card.save(Path(tmp))
        detector = Detector.load(Path(tmp), args.cache, threads=args.threads)

    images = sorted((args.data / "images").glob("*.jpg"))
    if args.limit:
        images = images[: args.limit]
    record: dict[str, np.ndarray] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, path in enumerate(images):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        plan = detector.plan(rgb)  # the serving crop and scale (skin normalisation, then `upscale`)
        scaled = apply_plan(rgb, plan)
        mirrored = np.ascontiguousarray(scaled[:, ::-1])
        (normal, flipped), _ = detector._detect_passes([scaled, mirrored], FLOOR)
        normal = _to_photo(normal, plan, scaled.shape[:2], w, h)
        flipped = _to_photo(_unflip(flipped, scaled.shape[1]), plan, scaled.shape[:2], w, h)
        record[f"{path.stem}|n"] = np.hstack([normal.boxes, normal.scores[:, None]])
        record[f"{path.stem}|f"] = np.hstack([flipped.boxes, flipped.scores[:, None]])
        if i % 20 == 0:
            print(f"{i + 1}/{len(images)} {time.perf_counter() - wall0:.0f}s", flush=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **record)
    print(f"images={len(images)} {changes}")
    print(f"cpu_s_per_photo={cpu / len(images):.3f} wall_s_per_photo={wall / len(images):.3f} (2 passes)")


if __name__ == "__main__":
    main()
