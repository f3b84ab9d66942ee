"""One function per quality measure; each returns a raw float the policy compares with a threshold.

All measures except `short_side` run on the working copy (see `working_copy`), so their cost does
not grow with the photo's resolution and a sharp 12 MP photo scores like the same photo at 640 px.
"""

from __future__ import annotations

import cv2
import numpy as np

CLIP_LEVEL = 250  # a channel at or above this has lost its detail


def working_copy(rgb: np.ndarray, side: int) -> np.ndarray:
    """Resize so the long side is exactly `side`: INTER_AREA down (cheap, alias-free), linear up.

    Upscaling small photos keeps measures on one scale: a small photo then reads as soft, which it is.
    """
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale == 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interpolation)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma as float32 in 0..255 (what people perceive as brightness)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32) @ weights


def clipped_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels with any channel blown out."""
    return rgb.max(axis=2) >= CLIP_LEVEL


def subject_mask(skin: np.ndarray, clipped: np.ndarray, reach: int) -> np.ndarray:
    """Skin plus the blown-out pixels near it.

    Over-exposed skin turns white and leaves the skin mask; adding clipped pixels within `reach`
    of detected skin keeps them in the exposure measures, while a bright window far away does not count.
    """
    if reach <= 0 or not skin.any():
        return skin
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    near_skin = cv2.dilate(skin.astype(np.uint8), kernel).astype(bool)
    return skin | (clipped & near_skin)


def fraction(mask: np.ndarray) -> float:
    """Share of pixels set in a boolean mask."""
    return float(mask.mean()) if mask.size else 0.0


def brightness(y: np.ndarray, mask: np.ndarray) -> float:
    """Median luma of the masked pixels: under-exposure measure, robust to spots and highlights."""
    values = y[mask]
    return float(np.median(values)) if values.size else 0.0


def clipped_fraction(clipped: np.ndarray, mask: np.ndarray) -> float:
    """Share of the masked pixels that are blown out: over-exposure measure."""
    count = int(mask.sum())
    return float((clipped & mask).sum() / count) if count else 0.0


def uniformity(y: np.ndarray, mask: np.ndarray, sigma: float) -> float:
    """Ratio of the 5th to the 95th percentile of the smoothed illumination over the masked pixels.

    Smoothing is normalised by the mask, so the dark background does not bleed into the skin; 1.0 is
    even light, a face half in shadow reads well below 0.5.
    """
    if not mask.any() or sigma <= 0:
        return 1.0
    weights = mask.astype(np.float32)
    blurred = cv2.GaussianBlur(y * weights, (0, 0), sigma)
    coverage = cv2.GaussianBlur(weights, (0, 0), sigma)
    valid = mask & (coverage > 0.25)
    if not valid.any():
        return 1.0
    illumination = blurred[valid] / coverage[valid]
    low, high = np.percentile(illumination, [5, 95])
    return float(low / high) if high > 1e-3 else 1.0


def sharpness(y: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute Laplacian of exposure-normalised luma over the masked region (working-copy scale).

    Dividing by the median luma makes a darker copy of a sharp photo still read as sharp, so blur
    and exposure stay separate retake reasons.
    """
    if y.shape[0] < 3 or y.shape[1] < 3 or not mask.any():
        return 0.0
    level = max(float(np.median(y[mask])), 8.0)
    laplacian = cv2.Laplacian(y / level, cv2.CV_32F, ksize=3)
    return float(np.abs(laplacian[mask]).mean() * 100.0)
