"""Synthetic skin photos with known lesions: for tests, the demo and frozen smoke benchmarks.

No real patient photo is ever needed to exercise the product end to end. The generator knows where it
put every spot, so reviews can be "filled in from known labels" and benchmarks scored honestly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class SyntheticPhoto:
    rgb: np.ndarray  # HxWx3 uint8
    boxes: list[tuple[float, float, float, float]]  # x1, y1, x2, y2 of every spot
    grade: int  # Hayashi grade of the spot count with the default bands


def synthetic_skin_photo(
    seed: int, width: int = 640, height: int = 640, spots: int | None = None, radius: tuple[float, float] = (7, 14)
) -> SyntheticPhoto:
    """Skin tone with pores, soft shading and raised reddish papules of a few tens of pixels."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40)) if spots is None else spots
    tone = np.array([rng.uniform(190, 225), rng.uniform(135, 165), rng.uniform(115, 140)], dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shading = 1.0 - 0.1 * ((xx / width - 0.45) ** 2 + (yy / height - 0.5) ** 2)
    img = tone[None, None, :] * shading[..., None]
    img += cv2.GaussianBlur(rng.normal(0, 9, (height, width)).astype(np.float32), (0, 0), 1.2)[..., None]
    img += rng.normal(0, 5, (height, width, 1)).astype(np.float32)  # fine pores: a sharp photo has texture
    scale = max(width, height) / 640
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(n):
        r = rng.uniform(*radius) * scale
        cx, cy = rng.uniform(r + 2, width - r - 2), rng.uniform(r + 2, height - r - 2)
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        weight = np.exp(-d2 * 1.6)[..., None]  # soft-edged, redder in the middle
        img = img * (1 - 0.45 * weight) + np.array([200, 70, 70], np.float32) * 0.45 * weight
        boxes.append((cx - r, cy - r, cx + r, cy + r))
    from detector.grading import grade_from_count

    return SyntheticPhoto(
        rgb=np.clip(img, 0, 255).astype(np.uint8), boxes=boxes, grade=grade_from_count(len(boxes)).grade
    )


def write_yolo_dataset(folder: Path, seeds: Iterable[int], size: int = 640) -> Path:
    """A YOLO folder (images/ + labels/) of synthetic photos; file names carry the grade as `levleN_`."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        photo = synthetic_skin_photo(seed, size, size)
        name = f"levle{photo.grade}_synthetic{seed}"
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ValueError("could not encode a synthetic photo")
        (folder / "images" / f"{name}.jpg").write_bytes(encoded.tobytes())
        lines = [
            f"0 {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} {(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}"
            for x1, y1, x2, y2 in photo.boxes
        ]
        (folder / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder
