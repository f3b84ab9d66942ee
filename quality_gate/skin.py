"""Skin detection without any downloaded model.

Primary rule: the YCrCb box of Chai & Ngan (Cr 133..173, Cb 77..127), applied after a gain that
brings dim photos up to normal brightness. sRGB is close to a power law, so a darker exposure scales
all channels alike and the gain restores the chroma the fixed box expects: the gate still finds the
face in an under-exposed photo and says `too_dark` rather than `no_skin`. Fallback when that finds
too little (colour casts from tungsten or LED light): the skin locus of Soriano et al. in normalised rg
chromaticity, which tolerates casts but also lets in brownish hair and walls, so it is second choice.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality_gate.measures import max_channel

# Soriano et al. (2003) skin locus bounds: g between two parabolas in r.
_UPPER = (-1.3767, 1.0743, 0.1452)
_LOWER = (-0.776, 0.5601, 0.1766)
_WHITE_RADIUS_SQ = 0.0004  # exclude near-grey pixels around (1/3, 1/3): walls, paper, clipped skin
_MIN_CHANNEL_MAX = 12.0  # below this, chromaticity is JPEG noise
_MAX_CHANNEL_MIN = 250.0  # all channels clipped: colour is unknown, not skin


def skin_locus_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean HxW mask of pixels whose chromaticity lies in the skin locus."""
    img = rgb.astype(np.float32)
    r_ch, g_ch, b_ch = img[..., 0], img[..., 1], img[..., 2]
    total = r_ch + g_ch + b_ch + 1e-6
    r = r_ch / total
    g = g_ch / total
    upper = _UPPER[0] * r * r + _UPPER[1] * r + _UPPER[2]
    lower = _LOWER[0] * r * r + _LOWER[1] * r + _LOWER[2]
    not_white = (r - 1 / 3) ** 2 + (g - 1 / 3) ** 2 > _WHITE_RADIUS_SQ
    brightest = np.maximum(np.maximum(r_ch, g_ch), b_ch)
    darkest = np.minimum(np.minimum(r_ch, g_ch), b_ch)
    return (
        (g < upper)
        & (g > lower)
        & (r > 0.2)
        & (r < 0.6)
        & not_white
        & (r_ch > b_ch)  # skin is red over blue under any plausible light
        & (brightest >= _MIN_CHANNEL_MAX)
        & (darkest < _MAX_CHANNEL_MIN)
    )


_TARGET_BRIGHT = 190.0  # 95th percentile of max channel the gain lifts dim photos to
_MAX_GAIN = 12.0


def normalise_exposure(rgb: np.ndarray) -> np.ndarray:
    """Brighten a dim photo so its 95th percentile of max channel sits at a normal level; never darkens."""
    histogram = cv2.calcHist([max_channel(rgb)], [0], None, [256], [0, 256]).ravel()
    level = float(np.searchsorted(np.cumsum(histogram), 0.95 * histogram.sum()))
    gain = min(_MAX_GAIN, _TARGET_BRIGHT / max(level, 1.0))
    if gain <= 1.0:
        return rgb
    return np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def ycrcb_mask(rgb: np.ndarray) -> np.ndarray:
    """Chai & Ngan YCrCb skin box on an exposure-normalised copy."""
    ycrcb = cv2.cvtColor(np.ascontiguousarray(normalise_exposure(rgb)), cv2.COLOR_RGB2YCrCb)
    in_box = cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)).astype(bool)
    return in_box & (max_channel(rgb) >= _MIN_CHANNEL_MAX)


def skin_mask(rgb: np.ndarray, min_fraction: float) -> np.ndarray:
    """Skin mask: YCrCb rule, or the chromaticity locus when the rule finds less than `min_fraction`."""
    mask = ycrcb_mask(rgb)
    if mask.mean() >= min_fraction:
        return mask
    fallback = skin_locus_mask(rgb)
    return fallback if fallback.mean() > mask.mean() else mask
