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

from quality_gate.measures import LINEAR_LUT, fraction, mask_u8, max_channel

# Soriano et al. (2003) skin locus bounds: g between two parabolas in r.
_UPPER = (-1.3767, 1.0743, 0.1452)
_LOWER = (-0.776, 0.5601, 0.1766)
_WHITE_RADIUS_SQ = 0.0004  # exclude near-grey pixels around (1/3, 1/3): walls, paper, clipped skin
_MIN_CHANNEL_MAX = 12.0  # below this, chromaticity is JPEG noise
_MAX_CHANNEL_MIN = 250.0  # all channels clipped: colour is unknown, not skin


def skin_locus_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean HxW mask of pixels whose chromaticity lies in the skin locus."""
    # contiguous float planes (not strided views of one float copy): the same values, ~2x faster arithmetic
    r_ch, g_ch, b_ch = (channel.astype(np.float32) for channel in cv2.split(np.ascontiguousarray(rgb)))
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


# `brightest` below: the photo's `max_channel`, when the caller has it already (the skin mask needs it thrice)


def normalise_exposure(rgb: np.ndarray, brightest: np.ndarray | None = None) -> np.ndarray:
    """Brighten a dim photo so its 95th percentile of max channel sits at a normal level; never darkens."""
    brightest = max_channel(rgb) if brightest is None else brightest
    histogram = cv2.calcHist([brightest], [0], None, [256], [0, 256]).ravel()
    level = float(np.searchsorted(np.cumsum(histogram), 0.95 * histogram.sum()))
    gain = min(_MAX_GAIN, _TARGET_BRIGHT / max(level, 1.0))
    if gain <= 1.0:
        return rgb
    scaled = rgb.astype(np.float32)
    scaled *= gain
    return np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)


def ycrcb_mask(rgb: np.ndarray, brightest: np.ndarray | None = None) -> np.ndarray:
    """Chai & Ngan YCrCb skin box on an exposure-normalised copy."""
    brightest = max_channel(rgb) if brightest is None else brightest
    ycrcb = cv2.cvtColor(np.ascontiguousarray(normalise_exposure(rgb, brightest)), cv2.COLOR_RGB2YCrCb)
    in_box = cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)).astype(bool)
    return in_box & (brightest >= _MIN_CHANNEL_MAX)


def lit_skin_mask(rgb: np.ndarray, min_fraction: float, brightest: np.ndarray | None = None) -> np.ndarray:
    """Skin as the colour rules see it: YCrCb rule, or the chromaticity locus when the rule finds too little."""
    mask = ycrcb_mask(rgb, brightest)
    if fraction(mask) >= min_fraction:
        return mask
    fallback = skin_locus_mask(rgb)
    return fallback if fraction(fallback) > fraction(mask) else mask


_SHADOW_CHROMA_RADIUS = 2.5  # in standard deviations of the lit skin's own chromaticity
_SHADOW_MIN_CHROMA_STD = 0.012  # floor on that spread (a flat synthetic patch has almost none)
_SHADOW_MIN_CHANNEL = 10.0  # below this the chromaticity of a pixel is noise
_SHADOW_FLOOR = 0.15  # x the lit skin's 90th-percentile brightest channel: ~5 stops down, darker is background


def grow_into_shadow(rgb: np.ndarray, mask: np.ndarray, brightest: np.ndarray | None = None) -> np.ndarray:
    """Add the shadowed part of the skin: pixels with the lit skin's chromaticity, connected to it.

    Shadow scales all three channels alike, so it moves a pixel's brightness but not its rg chromaticity
    (r = R/(R+G+B), g = G/(R+G+B)); the fixed YCrCb box, which measures chroma in absolute units, drops
    skin in deep shadow. Candidates are the pixels within a few standard deviations of the lit skin's mean
    chromaticity; only candidate regions touching the lit skin are kept, so a brown wall elsewhere stays out.
    Pixels more than ~5 stops below the lit skin (`_SHADOW_FLOOR`) leave the mask, lit or not: in these
    photos that is a dark background whose JPEG noise happens to have a skin-like chroma.
    """
    if fraction(mask) < 0.002:
        return mask
    brightest = max_channel(rgb) if brightest is None else brightest
    bright_enough = brightest >= max(shadow_floor(brightest, mask), _SHADOW_MIN_CHANNEL)
    mask = mask & bright_enough
    if not mask.any():
        return mask
    red, green, blue = (channel.astype(np.float32) for channel in cv2.split(rgb))
    # float32 arithmetic in place, in the order of the plain expressions (fewer ~0.4 MB temporaries, same bits)
    total = red + green
    total += blue
    total += 1e-3
    r = np.divide(red, total, out=red)
    g = np.divide(green, total, out=green)
    distance = _chroma_distance(r, g, mask, _SHADOW_MIN_CHROMA_STD)
    candidates = (distance < _SHADOW_CHROMA_RADIUS**2) & bright_enough
    return _connected_to(mask, candidates)


def _chroma_distance(r: np.ndarray, g: np.ndarray, mask: np.ndarray, min_std: float) -> np.ndarray:
    """((r - mean_r) / sr)^2 + ((g - mean_g) / sg)^2 of float32 chromaticity planes, with the mean and standard
    deviation (floored at `min_std`) of `mask`'s pixels: how far each pixel's colour is from the masked region's.
    Computed in place (`r` and `g` are overwritten): fewer temporaries, the same bits."""
    m8 = mask_u8(mask)
    mean_r, std_r = cv2.meanStdDev(r, mask=m8)
    mean_g, std_g = cv2.meanStdDev(g, mask=m8)
    distance = np.subtract(r, float(mean_r[0, 0]), out=r)
    distance /= max(float(std_r[0, 0]), min_std)
    distance *= distance
    off_g = np.subtract(g, float(mean_g[0, 0]), out=g)
    off_g /= max(float(std_g[0, 0]), min_std)
    off_g *= off_g
    distance += off_g
    return distance


def _connected_to(mask: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """`mask` and the regions of `candidates` that touch it (8-connected)."""
    count, labels = cv2.connectedComponents(mask_u8(candidates | mask), connectivity=8)
    touching = np.zeros(count, bool)
    touching[labels[mask]] = True  # ~2x faster than a bincount, which widens every label to int64 first
    touching[0] = False
    return np.take(touching, labels)  # touching[labels], ~2x faster


def shadow_floor(brightest: np.ndarray, mask: np.ndarray) -> float:
    """The brightest-channel level below which the skin mask keeps nothing: `_SHADOW_FLOOR` x the masked 90th pct."""
    hist = cv2.calcHist([brightest], [0], mask_u8(mask), [256], [0, 256]).ravel()
    return _SHADOW_FLOOR * float(np.searchsorted(np.cumsum(hist), 0.9 * hist.sum()))


_DEEP_CHROMA_RADIUS = 2.5  # in standard deviations of the skin's linear-light chromaticity
_DEEP_MIN_CHROMA_STD = 0.02  # floor on that spread: near black, JPEG leaves the chroma of a pixel a few % off
_DEEP_MIN_CHANNEL = 3  # below this (of 255) a pixel is black: no colour to read
_DEEP_SHRINK = 4  # read on a copy this many times smaller each way: a deep shadow is large


def deep_shadow(rgb: np.ndarray, skin: np.ndarray, brightest: np.ndarray | None = None) -> float:
    """Skin-coloured area too dark to be in the skin mask, connected to the skin, as a share of the skin.

    The mask leaves out what lies ~5 stops below the lit skin (`shadow_floor`): in ACNE04 that is mostly a dark room
    whose JPEG noise is skin-coloured. A shadow that deep over part of the face leaves the mask too, and the lit rest
    then looks like a half face against a dark room. What tells them apart is colour in *linear* light, where a
    shadow scales R, G and B alike and keeps the chromaticity exactly (sRGB does not: its curve bends near black),
    read on 4x4 px block averages (taken in sRGB, then made linear: they quiet the JPEG noise near black). Shadowed
    skin keeps the skin's chromaticity; a dark room does not.
    """
    if np.count_nonzero(skin) < 0.002 * skin.size:
        return 0.0
    brightest = max_channel(rgb) if brightest is None else brightest
    floor = shadow_floor(brightest, skin)
    height, width = skin.shape
    size = (max(1, width // _DEEP_SHRINK), max(1, height // _DEEP_SHRINK))
    level = cv2.resize(brightest, size, interpolation=cv2.INTER_AREA)
    dark = (level < floor) & (level >= _DEEP_MIN_CHANNEL)
    if not dark.any():
        return 0.0
    small_skin = cv2.resize(skin.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5  # mostly skin
    count = int(np.count_nonzero(small_skin))
    if not count:
        return 0.0
    linear = cv2.LUT(cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA), LINEAR_LUT)
    red, green, blue = cv2.split(linear)
    total = red + green + blue + np.float32(1e-6)
    r, g = red / total, green / total
    distance = _chroma_distance(r, g, small_skin, _DEEP_MIN_CHROMA_STD)
    candidates = dark & ~small_skin & (distance < _DEEP_CHROMA_RADIUS**2)
    return float(np.count_nonzero(_connected_to(small_skin, candidates) & candidates) / count)


def skin_mask(rgb: np.ndarray, min_fraction: float, brightest: np.ndarray | None = None) -> np.ndarray:
    """Skin mask: the colour rules' lit skin, grown into the shadowed skin connected to it."""
    brightest = max_channel(rgb) if brightest is None else brightest
    return grow_into_shadow(rgb, lit_skin_mask(rgb, min_fraction, brightest), brightest)
