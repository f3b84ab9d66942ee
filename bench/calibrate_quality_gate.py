"""Calibrate the quality gate on real photos: false rejects on good ones, catch rate per degradation.

    .venv/bin/python bench/calibrate_quality_gate.py \
        --data /work/shared/datasets/acne04/valid/images --data /work/shared/datasets/acne04/train/images \
        --limit 150

Exposure changes are made in linear light (sRGB -> linear, x 2^k, back with clipping), as a camera
would, not by scaling sRGB values. Measures are computed once per photo and degradation, then
replayed through `judge`, and the good photos' quantiles are printed to pick thresholds from.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from quality_gate.policy import Thresholds, compute_measures, judge

Degradation = Callable[[np.ndarray], np.ndarray]


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)
    return (srgb * 255.0 + 0.5).astype(np.uint8)


def exposure(stops: float) -> Degradation:
    return lambda image: linear_to_srgb(srgb_to_linear(image) * 2.0**stops)


def side_light(stops: float) -> Degradation:
    """Light falling off by `stops` from right to left across the frame."""

    def apply(image: np.ndarray) -> np.ndarray:
        ramp = np.linspace(-stops, 0.0, image.shape[1], dtype=np.float32)[None, :, None]
        return linear_to_srgb(srgb_to_linear(image) * 2.0**ramp)

    return apply


def gaussian_blur(sigma: float) -> Degradation:
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


def motion_blur(length: int, angle: float) -> Degradation:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, angle, 1.0), (length, length))
    kernel /= kernel.sum()
    return lambda image: cv2.filter2D(image, -1, kernel)


def downscale(short_side: int) -> Degradation:
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = short_side / min(height, width)
        size = (round(width * scale), round(height * scale))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    return apply


# name -> (degradation, the retake code it should raise; None for the good photos)
DEGRADATIONS: dict[str, tuple[Degradation, str | None]] = {
    "good": (lambda image: image, None),
    "darker 1 stop": (exposure(-1), "too_dark"),
    "darker 2 stops": (exposure(-2), "too_dark"),
    "darker 3 stops": (exposure(-3), "too_dark"),
    "brighter 1 stop": (exposure(1), "too_bright"),
    "brighter 2 stops": (exposure(2), "too_bright"),
    "brighter 3 stops": (exposure(3), "too_bright"),
    "gaussian blur s=2": (gaussian_blur(2), "blurry"),
    "gaussian blur s=4": (gaussian_blur(4), "blurry"),
    "motion blur 15 px": (motion_blur(15, 0), "blurry"),
    "motion blur 25 px": (motion_blur(25, 45), "blurry"),
    "downscale 240 px": (downscale(240), "low_resolution"),
    "downscale 160 px": (downscale(160), "low_resolution"),
    "side light 3 stops": (side_light(3), "uneven_lighting"),
}

GOOD_QUANTILES = (0.005, 0.01, 0.03, 0.5, 0.97, 0.99, 0.995)


def load_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def sample_photos(folders: list[Path], limit: int, seed: int) -> list[Path]:
    photos = sorted(p for folder in folders for p in folder.glob("*.jpg"))
    random.Random(seed).shuffle(photos)
    return photos[:limit] if limit > 0 else photos


def measure_all(photos: list[Path], thresholds: Thresholds) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {name: [] for name in DEGRADATIONS}
    for path in track(photos, description="Measuring photos x degradations"):
        image = load_rgb(path)
        for name, (degrade, _) in DEGRADATIONS.items():
            results[name].append(compute_measures(degrade(image), thresholds))
    return results


def print_good_quantiles(console: Console, good: list[dict[str, float]]) -> None:
    table = Table(title="Measures on the good photos (quantiles)")
    table.add_column("measure")
    for q in GOOD_QUANTILES:
        table.add_column(f"q{q * 100:g}", justify="right")
    for measure in good[0]:
        values = np.array([m[measure] for m in good])
        table.add_row(measure, *(f"{v:.4g}" for v in np.quantile(values, GOOD_QUANTILES)))
    console.print(table)


def print_verdicts(console: Console, results: dict[str, list[dict[str, float]]], thresholds: Thresholds) -> None:
    table = Table(title="Gate verdicts with the default thresholds")
    for column in ("degradation", "n", "rejected %", "expected code %", "codes seen"):
        table.add_column(column, justify="left" if column in ("degradation", "codes seen") else "right")
    for name, values in results.items():
        expected = DEGRADATIONS[name][1]
        reports = [judge(v, thresholds) for v in values]
        rejected = sum(not r.accepted for r in reports)
        hit = sum(expected in r.retake_codes for r in reports) if expected else rejected
        codes = Counter(code for r in reports for code in r.retake_codes)
        table.add_row(
            name,
            str(len(reports)),
            f"{100 * rejected / len(reports):.1f}",
            f"{100 * hit / len(reports):.1f}" if expected else "-",
            ", ".join(f"{code} {count}" for code, count in codes.most_common()),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True, help="folder of good photos")
    parser.add_argument("--limit", type=int, default=150, help="photos to sample (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", type=Path, help="write the raw measures as JSON, to try thresholds offline")
    args = parser.parse_args()
    console = Console(width=150)
    thresholds = Thresholds()
    photos = sample_photos(args.data, args.limit, args.seed)
    console.print(f"{len(photos)} photos from {', '.join(str(d) for d in args.data)}; {thresholds}")
    cv2.setNumThreads(1)  # shared CPU: stay on one core
    results = measure_all(photos, thresholds)
    if args.dump:
        args.dump.write_text(json.dumps(results))
    print_good_quantiles(console, results["good"])
    print_verdicts(console, results, thresholds)


if __name__ == "__main__":
    main()
