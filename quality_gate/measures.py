"""One function per quality measure; each returns a raw float the policy compares with a threshold.

All measures except `short_side` run on the working copy (see `working_copy`), so their cost does
not grow with the photo's resolution and a sharp 12 MP photo scores like the same photo at 640 px.
"""

from __future__ import annotations

import cv2
import numpy as np

CLIP_LEVEL = 250  # a channel at or above this has lost its detail


def working_copy(rgb: np.ndarray, side: int) -> np.ndarray:
    """Resize so the long side is exactly `side`: INTER_AREA down (alias-free), linear up.

    A large photo first goes to twice the target with INTER_LINEAR, which reads only the pixels it
    needs (INTER_AREA over 12 MP costs ~10x more), then INTER_AREA halves it. Upscaling small photos
    keeps measures on one scale: a small photo then reads as soft, which it is.
    """
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale == 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale >= 1.0:
        return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    if scale < 0.25:
        rgb = cv2.resize(rgb, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def max_channel(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel brightest channel (uint8); OpenCV is ~30x faster than numpy's max over an axis."""
    return cv2.max(cv2.max(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma as float32 in 0..255 (what people perceive as brightness)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb).astype(np.float32), cv2.COLOR_RGB2GRAY)


def clipped_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels with any channel blown out."""
    return max_channel(rgb) >= CLIP_LEVEL


def subject_mask(skin: np.ndarray, clipped: np.ndarray, reach: int) -> np.ndarray:
    """Skin plus the blown-out pixels near it.

    Over-exposed skin turns white and leaves the skin mask; adding clipped pixels within `reach`
    of detected skin keeps them in the exposure measures, while a bright window far away does not count.
    """
    if reach <= 0 or not skin.any():
        return skin
    return skin | (clipped & dilate(skin, reach))


def dilate(mask: np.ndarray, reach: int) -> np.ndarray:
    """Grow a mask by `reach` px (square kernel: separable, so cheap at any reach)."""
    if reach <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


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
    even light, a face half in shadow reads well below 0.5. Illumination is smooth by definition, so
    it is estimated on a copy shrunk until the blur is ~4 px wide (a wide blur at full size is slow).
    """
    if not mask.any() or sigma <= 0:
        return 1.0
    shrink = max(1.0, sigma / 4.0)
    small = (max(1, round(y.shape[1] / shrink)), max(1, round(y.shape[0] / shrink)))
    weights = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    y_small = cv2.resize(y * mask, small, interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(y_small, (0, 0), sigma / shrink)
    coverage = cv2.GaussianBlur(weights, (0, 0), sigma / shrink)
    mask = weights > 0.5
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
