"""Scale normalisation: show the network skin at the scale it was trained on, whatever the capture size.

Lesion size in pixels follows the capture resolution and the framing, not the skin. The detector learnt
lesions of 20-40 px on ACNE04 close-ups resized to 640 px, where the skin region spans about 590 px. So
before detection the photo is cropped to its skin region and resized until that region spans the model's
`skin_extent_px` (a property of the training data, written on the model card by training): a 12 MP close-up
is shrunk about 7x, a 640 px one is left almost as it is, and a photo taken from further away (skin in the
middle of a large background) is cropped to the skin first.

The skin region is measured on the photo itself: the box holding the central 98% of skin pixels
(percentiles, so stray skin-coloured pixels in the background do not stretch it), cut to the box of the
sharp pixels, so that an out-of-focus background of skin colour (a blurred wall, or the blurred enlargement
phones put behind a photo) does not count as skin. Resampling the photo by k multiplies the region's long
side by k, which is what makes the whole answer resolution-invariant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from quality_gate.skin import lit_skin_mask

WORKING_SIDE = 320  # the skin region is located on a copy this long: 1-2 ms, and precise enough
MIN_SKIN_SHARE = 0.02  # below this share of the frame the region is too unreliable: take the whole photo
PERCENTILES = (1.0, 99.0)
SHARP_SHARE = 0.3  # a pixel is sharp when its fine detail reaches this share of the photo's 99th percentile
SHARP_PERCENTILES = (0.5, 99.5)
MIN_CROP_SHARE = 0.5  # at the training scale, crop only when the skin region is less than half the photo
CROP_MARGIN = 0.04  # of the region's long side, added on each side so edge lesions stay whole


@dataclass(frozen=True, slots=True)
class Region:
    """A box [x0, x1) x [y0, y1) in photo pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def extent(self) -> float:
        """The long side: what scales with capture resolution."""
        return max(self.x1 - self.x0, self.y1 - self.y0)


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """Crop [x0:x1, y0:y1] of the photo, then resize it by `factor`."""

    x0: int
    y0: int
    x1: int
    y1: int
    factor: float
    skin: Region | None  # None: no reliable skin region, the whole photo was measured


def locate_skin(rgb: np.ndarray) -> Region | None:
    """The skin region of a photo in its own pixels, or None when too little skin is found."""
    height, width = rgb.shape[:2]
    shrink = min(1.0, WORKING_SIDE / max(height, width))
    small = rgb
    if shrink < 1.0:
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = lit_skin_mask(small, MIN_SKIN_SHARE)  # colour rules only: what the card's reference was measured with
    if mask.mean() < MIN_SKIN_SHARE:
        return None
    x0, y0, x1, y1 = _box(mask, PERCENTILES)
    sharp = _sharp_mask(small)
    if sharp.any():
        a, b, c, d = _box(sharp, SHARP_PERCENTILES)
        if min(c, x1) - max(a, x0) >= 4 and min(d, y1) - max(b, y0) >= 4:
            x0, y0, x1, y1 = max(x0, a), max(y0, b), min(x1, c), min(y1, d)
    sx, sy = width / small.shape[1], height / small.shape[0]
    return Region(float(x0 * sx), float(y0 * sy), float(x1 * sx), float(y1 * sy))


def _box(mask: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float, float, float]:
    """The box from the low to the high percentile of the mask's pixel positions (+1: a pixel is a cell)."""
    ys, xs = np.nonzero(mask)
    x0, x1 = np.percentile(xs, percentiles)
    y0, y1 = np.percentile(ys, percentiles)
    return float(x0), float(y0), float(x1 + 1), float(y1 + 1)


def _sharp_mask(small: np.ndarray) -> np.ndarray:
    """Pixels with fine detail: |luma - its gaussian blur (sigma 1 px)|, relative to the photo's own detail."""
    luma = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = np.abs(luma - cv2.GaussianBlur(luma, (0, 0), 1.0))
    top = float(np.percentile(detail, 99))
    return detail >= SHARP_SHARE * top if top > 0 else np.zeros(detail.shape, bool)


def plan_scale(
    width: int,
    height: int,
    skin: Region | None,
    reference: float | None,
    *,
    upscale: float = 1.0,
    tolerance: float = 1.0,
    max_side: int | None = None,
) -> ScalePlan:
    """Where to crop and how much to resize so the skin spans `reference` px (times the card's `upscale`).

    A photo whose skin is already within `tolerance` (a ratio, >= 1) of the reference is not resampled: it
    looks like the training photos, and the network was trained with scale jitter wider than that, so
    resampling would only blur it; it is cropped only when the skin fills less than half of it (a photo taken
    from further away), and only when what it keeps fits in `max_side` (one network pass): a larger photo is
    normalised anyway, since at its own scale it would cost several tiles. Without a reference (an old card) the
    whole photo is kept at `upscale`.
    """
    if reference is None:
        return ScalePlan(0, 0, width, height, float(upscale), skin)
    region = skin or Region(0.0, 0.0, float(width), float(height))
    factor = reference / max(region.extent, 1.0)
    side = (1.0 + 2.0 * CROP_MARGIN) * region.extent
    # A square window around the skin, like the training photos' framing (a close-up filling a square frame):
    # a tight crop changes what the network sees around the lesions, and with it the counts.
    x0, x1 = _window((region.x0 + region.x1) / 2, side, width)
    y0, y1 = _window((region.y0 + region.y1) / 2, side, height)
    if x1 - x0 < 8 or y1 - y0 < 8:
        x0, y0, x1, y1 = 0, 0, width, height
    if 1.0 / tolerance <= factor <= tolerance:
        kept = (x0, y0, x1, y1)
        if (x1 - x0) * (y1 - y0) >= MIN_CROP_SHARE * width * height:
            kept = (0, 0, width, height)
        if max_side is None or max(kept[2] - kept[0], kept[3] - kept[1]) <= max_side:
            return ScalePlan(*kept, float(upscale), skin)
    factor *= upscale
    return ScalePlan(x0, y0, x1, y1, float(factor), skin)


def _window(centre: float, side: float, length: int) -> tuple[int, int]:
    """[start, end) of a window of `side` px centred on `centre`, moved inside [0, length), clipped if longer."""
    if side >= length:
        return 0, length
    start = min(max(centre - side / 2, 0.0), length - side)
    return int(np.floor(start)), min(length, int(np.ceil(start + side)))


def apply_plan(rgb: np.ndarray, plan: ScalePlan) -> np.ndarray:
    """The cropped, resized image the network sees."""
    crop = rgb[plan.y0 : plan.y1, plan.x0 : plan.x1]
    if plan.factor == 1.0:
        return np.ascontiguousarray(crop)
    height, width = crop.shape[:2]
    size = (max(8, round(width * plan.factor)), max(8, round(height * plan.factor)))
    interpolation = cv2.INTER_AREA if plan.factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(crop, size, interpolation=interpolation)


def to_photo(boxes: np.ndarray, plan: ScalePlan, scaled_shape: tuple[int, int]) -> np.ndarray:
    """Boxes in the resized crop's pixels -> the photo's pixels (exact inverse of `apply_plan`)."""
    crop_h, crop_w = plan.y1 - plan.y0, plan.x1 - plan.x0
    sx, sy = crop_w / scaled_shape[1], crop_h / scaled_shape[0]
    out = boxes.astype(np.float32).copy()
    out[:, [0, 2]] = out[:, [0, 2]] * sx + plan.x0
    out[:, [1, 3]] = out[:, [1, 3]] * sy + plan.y0
    return out


def to_crop(boxes: np.ndarray, plan: ScalePlan, scaled_shape: tuple[int, int]) -> np.ndarray:
    """Boxes in the photo's pixels -> the resized crop's pixels (the inverse of `to_photo`)."""
    crop_h, crop_w = plan.y1 - plan.y0, plan.x1 - plan.x0
    sx, sy = scaled_shape[1] / crop_w, scaled_shape[0] / crop_h
    out = boxes.astype(np.float32).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - plan.x0) * sx
    out[:, [1, 3]] = (out[:, [1, 3]] - plan.y0) * sy
    return out


def reference_extent(photos: Iterable[np.ndarray]) -> float | None:
    """The median skin extent of training photos as the network saw them: the model's `skin_extent_px`."""
    extents = [region.extent for region in map(locate_skin, photos) if region is not None]
    return round(float(np.median(extents)), 1) if extents else None
