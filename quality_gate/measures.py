"""One function per quality measure; each returns a raw float the policy compares with a threshold.

All measures except `short_side` run on the working copy (see `working_copy`: 640 px for the Laplacian
sharpness, noise, edge width and one directional detail ratio, half that for skin, exposure, lighting, the other
detail ratios and colour statistics), so their cost does not grow with the photo's resolution and a sharp 12 MP photo
scores like the same photo at 640 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CLIP_LEVEL = 250  # a channel at or above this has lost its detail


def working_copy(rgb: np.ndarray, side: int) -> np.ndarray:
    """Resize so the long side is exactly `side`: area averaging down (alias-free), linear up.

    From under twice the target (a 12 MP photo decoded at 1/4: 1008 px), INTER_CUBIC first enlarges to twice the
    target and INTER_AREA halves that: OpenCV's INTER_AREA is fast for an exact halving but ~10x slower at a ratio
    such as 1008 -> 640, and the two steps alias fine texture no more than it does there (`test_quality_measures`)
    and soften less (a linear enlargement would soften more; issue 12's note). From 2-4x (a 12 MP photo decoded at
    1/2: 2016 px), an exact INTER_AREA halving first (2 x 2 block means, its SIMD path; an odd last row or column
    is dropped), which leaves 1-2x to go as above: ~2 ms, where INTER_AREA at the odd ratio costs ~8 ms and a
    3 x 3 block mean ~3 ms, and block means alias no more than it does. A larger photo first goes to twice the target
    with INTER_LINEAR, which reads only the pixels it needs (INTER_AREA over 12 MP costs ~10x more), then
    INTER_AREA halves it. Upscaling small photos keeps measures on one scale: a small photo then reads as soft,
    which it is.
    """
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale == 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale >= 1.0:
        return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    if 0.25 <= scale < 0.5 and min(height, width) >= 4:
        even = rgb[: height - height % 2, : width - width % 2]
        return working_copy(cv2.resize(even, (width // 2, height // 2), interpolation=cv2.INTER_AREA), side)
    if scale > 0.5:
        rgb = cv2.resize(rgb, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_CUBIC)
    elif scale < 0.25:
        rgb = cv2.resize(rgb, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def working_copies(rgb: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The working copy (long side `side`) and the half-size one the smooth measures and the lighting CNN read."""
    work = working_copy(rgb, side)
    return work, working_copy(work, max(8, side // 2))


def max_channel(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel brightest channel (uint8); OpenCV is ~30x faster than numpy's max over an axis, and one split
    into contiguous planes ~2x faster than letting it copy each strided channel view."""
    red, green, blue = cv2.split(np.ascontiguousarray(rgb))
    return cv2.max(cv2.max(red, green), blue)


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


def magnitude(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sqrt(x^2 + y^2) of two float32 planes, correctly rounded. Not `cv2.magnitude`: it approximates the root, and
    which elements it rounds differently depends on where the buffers happen to sit in memory, so the same photo got
    different measures from call to call (a pixel on a quantile's or a threshold's boundary flipped: one photo's
    edge width read 3.20 or 3.35 px)."""
    out = x * x
    out += y * y
    return np.sqrt(out, out=out)


def mask_u8(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as the uint8 mask OpenCV takes: a view where it can be (bool is stored as 0/1 bytes)."""
    return np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)


def dilate(mask: np.ndarray, reach: int) -> np.ndarray:
    """Grow a mask by `reach` px (square kernel: separable, so cheap at any reach)."""
    if reach <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate(mask_u8(mask), kernel).astype(bool)


def fraction(mask: np.ndarray) -> float:
    """Share of pixels set in a boolean mask (a count: ~10x faster than the mean, the same float)."""
    return np.count_nonzero(mask) / mask.size if mask.size else 0.0


# OpenCV's masked mean and meanStdDev are 10-20x slower than its masked norms and unmasked sums; these helpers
# compute the same double sums (scaled by 1/count, as OpenCV does), equal to theirs to rounding. OpenCV's norms
# of uint8 can come back an ulp off their integer value, hence the rounding (a constant channel has no spread).


def _masked_sum(values: np.ndarray, m8: np.ndarray | None) -> float:
    """Sum of a one-channel image under a uint8 mask (None: all of it); exact for uint8 (its L1 norm)."""
    if values.dtype == np.uint8:
        return float(round(cv2.norm(values, cv2.NORM_L1, mask=m8)))
    return cv2.sumElems(values if m8 is None else cv2.copyTo(values, m8))[0]


def _masked_mean(values: np.ndarray, m8: np.ndarray) -> float:
    """`cv2.mean(values, mask=m8)[0]` of a one-channel image (0 for an empty mask)."""
    count = cv2.countNonZero(m8)
    return _masked_sum(values, m8) * (1.0 / count) if count else 0.0


def _masked_mean_std(channel: np.ndarray, mask: np.ndarray | None, offset: float = 0.0) -> tuple[float, float]:
    """`cv2.meanStdDev` of one channel plus `offset` under a boolean mask (None: everywhere); for uint8 the
    offset is applied to the exact integer sums, as if the channel had been shifted in float."""
    m8 = None if mask is None else mask_u8(mask)
    count = channel.size if m8 is None else cv2.countNonZero(m8)
    if not count:
        return 0.0, 0.0
    total = _masked_sum(channel, m8)
    squares = cv2.norm(channel, cv2.NORM_L2SQR, mask=m8)
    if channel.dtype == np.uint8:
        squares = float(round(squares))
    if offset:
        squares += 2.0 * offset * total + offset * offset * count
        total += offset * count
    scale = 1.0 / count
    mean = total * scale
    return mean, math.sqrt(max(squares * scale - mean * mean, 0.0))


def _area_shrink(size: tuple[int, int], *planes: np.ndarray) -> tuple[np.ndarray, ...]:
    """INTER_AREA shrink of several float32 planes in one multi-channel resize: each comes out bit for bit as its
    own resize gives it, at a fraction of the cost of one resize each."""
    return tuple(cv2.split(cv2.resize(cv2.merge(planes), size, interpolation=cv2.INTER_AREA)))


def brightness(y: np.ndarray, mask: np.ndarray) -> float:
    """Median luma of the masked pixels: under-exposure measure, robust to spots and highlights."""
    values = y[mask]
    return float(np.median(values)) if values.size else 0.0


def clipped_fraction(clipped: np.ndarray, mask: np.ndarray) -> float:
    """Share of the masked pixels that are blown out: over-exposure measure."""
    count = np.count_nonzero(mask)
    return float(np.count_nonzero(clipped & mask) / count) if count else 0.0


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
    weights, y_small = _area_shrink(small, mask.astype(np.float32), y * mask)
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
    and exposure stay separate retake reasons. `y` is uint8 (fast path) or float luma in 0..255.
    """
    if y.shape[0] < 3 or y.shape[1] < 3 or not mask.any():
        return 0.0
    m8 = mask_u8(mask)
    median = quantile_level(histogram(y, mask), 0.5) if y.dtype == np.uint8 else float(np.median(y[mask]))
    level = max(float(median), 8.0)
    # float input: OpenCV's uint8 -> float32 Laplacian has no fast path (~30x slower); the values are the same
    laplacian = cv2.Laplacian(y.astype(np.float32), cv2.CV_32F, ksize=3)
    return float(cv2.norm(laplacian, cv2.NORM_L1, mask=m8) / cv2.countNonZero(m8) / level * 100.0)


EDGE_WINDOW = 5  # px of the working copy across which an edge's contrast is read
EDGE_SHARE = 0.01  # the face's strongest gradients whose width is read


def sobel_gradients(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 Sobel gradients (x, y) of a luma plane as float32: computed once for the measures that read them."""
    return cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)


def edge_width(y: np.ndarray, mask: np.ndarray, gradients: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Median width in px (working-copy scale) of the face's strongest edges: the luma range across a 5 px window
    over the steepest slope there. ~3 on ACNE04 photos at 640 px, ~4.5 after a Gaussian blur of sigma 2, whatever
    the edges' contrast or the skin's texture, and the noise a phone adds after a blur steepens weak edges, not these
    (`bench/edge_width_study.py`). The window's width when no slope on the face reaches 1 grey level per px.
    `gradients`: `sobel_gradients(y)`, when already taken.
    """
    if y.shape[0] < EDGE_WINDOW or y.shape[1] < EDGE_WINDOW or not mask.any():
        return 0.0
    slope = magnitude(*(gradients or sobel_gradients(y)))  # a new plane: the gradients are not changed
    slope *= 0.125  # grey levels per px: a 3x3 Sobel answers 8 to a unit ramp
    span = cv2.morphologyEx(y, cv2.MORPH_GRADIENT, np.ones((EDGE_WINDOW, EDGE_WINDOW), np.uint8))
    cutoff = _masked_quantile(slope, mask, 1.0 - EDGE_SHARE, 1.0)  # to 1 grey level per px
    strongest = np.flatnonzero(mask & (slope >= max(cutoff, 1.0)))  # flat indices: take() is ~5x a boolean index
    if not strongest.size:
        return float(EDGE_WINDOW)
    return float(np.median(span.ravel().take(strongest) / slope.ravel().take(strongest)))


# --- linear light -------------------------------------------------------------------------------------------


def _srgb_to_linear_lut() -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


LINEAR_LUT = _srgb_to_linear_lut()  # sRGB code value -> linear light, 0..1


def srgb_from_linear(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB in 0..1 (clipped), in the input's float type: the inverse of `LINEAR_LUT`."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


MID_GREY = 0.18  # linear reflectance a camera's auto-exposure aims the scene average at


def histogram(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """256-bin histogram of a uint8 image, optionally under a boolean mask (OpenCV: ~20x faster than numpy)."""
    m = None if mask is None else mask_u8(mask)
    return cv2.calcHist([np.ascontiguousarray(values)], [0], m, [256], [0, 256]).ravel()


def quantile_level(hist: np.ndarray, q: float) -> int:
    """The uint8 level at quantile q of a 256-bin histogram (0 for an empty one)."""
    total = hist.sum()
    if total <= 0:
        return 0
    return int(min(255, np.searchsorted(np.cumsum(hist), q * total)))


def stops(level: int) -> float:
    """Exposure of a uint8 sRGB level in stops from mid grey, in linear light (floored at -12)."""
    return float(np.log2(max(float(LINEAR_LUT[level]), MID_GREY * 2.0**-12) / MID_GREY))


# --- blur: isotropic detail and its direction ----------------------------------------------------------------


def _tensor(y: np.ndarray, mask: np.ndarray, gradients: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Mean gradient structure tensor (Jxx, Jxy, Jyy) of y over the masked pixels (uint8 mask).

    Gradients are zeroed outside the mask first, so the products' plain sums are the masked sums."""
    count = cv2.countNonZero(mask)
    if not count:
        return np.zeros(3)
    gx, gy = (cv2.copyTo(g, mask) for g in (gradients or sobel_gradients(y)))
    scale = 1.0 / count
    return np.array([cv2.sumElems(cv2.multiply(a, b))[0] * scale for a, b in ((gx, gx), (gx, gy), (gy, gy))])


def detail_spectrum(
    y: np.ndarray, mask: np.ndarray, coarse: int = 8, gradients: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float, float, float]:
    """Fine-scale gradient energy relative to the same region `coarse` times smaller, in its best and worst direction.

    Returns (detail_max, detail_min, angle_deg). Both are ratios of the fine to the coarse structure tensor
    (generalised eigenvalues), so they do not depend on how much texture or contrast the skin has, only on
    how much of it survives at the finest scale: focus blur lowers both, motion blur only the one along the
    motion (`angle_deg` is that direction, 0 = horizontal). The coarse copy averages `coarse` px blocks, which
    blur of a few px barely changes. `gradients`: `sobel_gradients(y)`, when already taken.
    """
    if y.shape[0] < 4 * coarse or y.shape[1] < 4 * coarse or not mask.any():
        return 0.0, 0.0, 0.0
    small = (max(4, y.shape[1] // coarse), max(4, y.shape[0] // coarse))
    m8 = mask_u8(mask)
    fine = _tensor(y, m8, gradients)
    y_small = cv2.resize(y.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    m_small = (cv2.resize(m8, small, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    rough = _tensor(y_small, m_small) / coarse**2  # per fine pixel: a coarse gradient spans `coarse` px
    a11, a12, a22 = fine
    b11, b12, b22 = rough + 1e-9
    det_b = b11 * b22 - b12 * b12
    if det_b <= 1e-18:
        return 0.0, 0.0, 0.0
    trace = a11 * b22 + a22 * b11 - 2 * a12 * b12
    det_a = a11 * a22 - a12 * a12
    disc = max(trace * trace - 4 * det_b * det_a, 0.0) ** 0.5
    high = (trace + disc) / (2 * det_b)
    low = max((trace - disc) / (2 * det_b), 0.0)
    # direction of least fine detail: eigenvector of (A - low B) null space; gradient direction across the blur
    m11, m12 = a11 - low * b11, a12 - low * b12
    angle = float(np.degrees(np.arctan2(-m11, m12))) % 180.0 if abs(m11) + abs(m12) > 1e-12 else 0.0
    return float(np.sqrt(high)), float(np.sqrt(low)), angle


def direction_ratio(detail_max: float, detail_min: float) -> float:
    """Least over most fine detail (`detail_spectrum`'s two): 1 = no direction, motion blur ~0.5; 1 with no detail."""
    return detail_min / detail_max if detail_max > 0 else 1.0


# --- lighting --------------------------------------------------------------------------------------------------


LIGHT_GRID = 48  # cells across the long side on which the light is read: smooth, and cheap


@dataclass(frozen=True)
class LightGrid:
    """The light on a coarse grid (one shrink serves every lighting measure).

    `valid`: cells mostly skin; `level`: log2 linear light of those cells, averaged over their skin pixels only
    (a dark background next to the skin does not darken it); `area`: their skin share; `frame`: log2 light of
    every cell, skin or not; `side`: cells across the long side.
    """

    valid: np.ndarray
    level: np.ndarray
    area: np.ndarray
    frame: np.ndarray
    side: int


def light_grid(y_linear: np.ndarray, mask: np.ndarray, side: int = LIGHT_GRID) -> LightGrid | None:
    """The light of the skin and of the frame on a `side`-cell grid; None when under 8 cells are mostly skin."""
    if not mask.any():
        return None
    h, w = y_linear.shape
    scale = side / max(h, w)
    small = (max(2, round(w * scale)), max(2, round(h * scale)))
    weights, light, frame = _area_shrink(small, mask.astype(np.float32), y_linear * mask, y_linear)
    valid = weights > 0.5
    if np.count_nonzero(valid) < 8:
        return None
    level = np.log2(np.maximum(light[valid] / weights[valid], 1e-4))
    return LightGrid(valid, level, weights[valid], np.log2(np.maximum(frame, 1e-4)), side)


LIGHT_LEVEL_NAMES = (
    "light_q10",
    "light_q25",
    "light_q80",
    "light_q95",
    "light_spread",
    "light_spread_inner",
    "shadowed_1",
    "shadowed_1_5",
    "shadowed_2",
    "frame_gradient",
)


def light_levels(grid: LightGrid | None) -> dict[str, float]:
    """How the skin's light is spread (`LIGHT_LEVEL_NAMES`), for the uneven-lighting model.

    - light_qNN: the skin's light at that quantile of its area, in stops from mid grey;
    - light_spread / light_spread_inner: stops between the lit part (80th percentile) and the 10th / 25th;
    - shadowed_N: share of the skin more than N stops below the lit part (a shadow over part of the face);
    - frame_gradient: stops of tilt across the frame of a plane fitted to the whole frame's light (a light that
      falls off across the scene tilts the background too; a dark background behind a lit face does not tilt).
    A face in ACNE04's own photos already spans several stops (dark hair and rooms pass the colour test), so
    none of these alone separates side light from a good photo; together they catch deeper shadows
    (`bench/lighting_separability.py`).
    """
    if grid is None:
        return dict.fromkeys(LIGHT_LEVEL_NAMES, 0.0)
    level = grid.level - np.log2(MID_GREY)
    order = np.argsort(level)
    cumulative = np.cumsum(grid.area[order]) / grid.area.sum()

    def quantile(q: float) -> float:
        return float(level[order][min(int(np.searchsorted(cumulative, q)), len(order) - 1)])

    q10, q25, q80, q95 = quantile(0.10), quantile(0.25), quantile(0.80), quantile(0.95)
    values = {"light_q10": q10, "light_q25": q25, "light_q80": q80, "light_q95": q95}
    values["light_spread"], values["light_spread_inner"] = q80 - q10, q80 - q25
    for depth, name in ((1.0, "shadowed_1"), (1.5, "shadowed_1_5"), (2.0, "shadowed_2")):
        values[name] = float(grid.area[level < q80 - depth].sum() / grid.area.sum())
    values["frame_gradient"] = _plane_tilt(grid.frame, grid.side)
    return values


def _plane_tilt(frame: np.ndarray, side: int) -> float:
    """Tilt (stops per `side` cells) of the plane fitted to a full grid (at least 2 x 2, as `light_grid` makes it):
    for a full grid the x and y slopes decouple, so each is a covariance with the centred coordinate."""
    rows = np.arange(frame.shape[0], dtype=np.float64) - (frame.shape[0] - 1) / 2
    cols = np.arange(frame.shape[1], dtype=np.float64) - (frame.shape[1] - 1) / 2
    slope_x = float(frame.sum(axis=0) @ cols) / (frame.shape[0] * float(cols @ cols))
    slope_y = float(frame.sum(axis=1) @ rows) / (frame.shape[1] * float(rows @ rows))
    return float(np.hypot(slope_x, slope_y) * side)


def light_gradient(grid: LightGrid | None) -> tuple[float, float, float, float]:
    """Lighting across the skin from log2 of its smoothed light on the grid: (gradient, planarity, slope, angle).

    - gradient: stops of change across the frame's long side of a plane fitted to it; planarity: R^2 of that fit.
      Side light darkens one side of the skin in a smooth ramp, which a plane explains well; natural shading
      (nose, cheeks) and a face against a dark room change brightness too, but not along one plane.
    - slope: the median of the local gradients over the inner skin (cells 2+ cells from the mask's edge), in
      the same unit. A light falling off across the frame tilts every part of the skin the same way, so the
      median keeps it; a face's own shading (darker jaw, temples, neck) tilts parts in different directions
      and sits at the rim the median leaves out.
    - angle: the direction in which the plane's light changes, degrees modulo 180 in image coordinates (0: across,
      90: down), as `detail_spectrum` gives the direction of least detail: a shadow's edge takes fine detail away
      across itself, where the light changes, and reads as a smear in that direction.
    """
    if grid is None:
        return 0.0, 0.0, 0.0, 0.0
    valid, level, side = grid.valid, grid.level, grid.side
    rows, cols = np.nonzero(valid)
    design = np.stack([np.ones_like(level), cols / side, rows / side], axis=1)
    coef, *_ = np.linalg.lstsq(design, level, rcond=None)
    spread = float(level.var())
    residual = float((level - design @ coef).var())
    planarity = 1.0 - residual / spread if spread > 1e-9 else 0.0
    angle = float(np.degrees(np.arctan2(coef[2], coef[1]))) % 180.0
    return float(np.hypot(coef[1], coef[2])), planarity, _median_slope(level, valid, side), angle


def _median_slope(level: np.ndarray, valid: np.ndarray, side: int) -> float:
    inner = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)[1:-1, 1:-1]
    if inner.sum() < 10:
        return 0.0
    grid = np.zeros(valid.shape, np.float32)
    grid[valid] = level
    cover = cv2.GaussianBlur(valid.astype(np.float32), (5, 5), 1.0)
    grid = cv2.GaussianBlur(grid, (5, 5), 1.0) / np.maximum(cover, 1e-3)
    gx = (grid[1:-1, 2:] - grid[1:-1, :-2]) * (side / 2.0)
    gy = (grid[2:, 1:-1] - grid[:-2, 1:-1]) * (side / 2.0)
    return float(np.hypot(np.median(gx[inner]), np.median(gy[inner])))


# --- what the photo shows: colour and texture statistics for the out-of-distribution check ---------------------

GREY_CHROMA = 8.0  # Lab chroma (uint8 units) below which a pixel is grey
EDGE_LEVEL = 0.08  # gradient magnitude, as a share of the median luma, that counts as an edge


def colour_texture(rgb: np.ndarray, skin: np.ndarray) -> dict[str, float]:
    """Colour and texture statistics of a (small) working copy: frame-wide and on the skin.

    Lab in OpenCV's uint8 units (a*, b* offset by 128), so "red_green" is a* and "yellow_blue" is b*.
    `edge_density` is the share of pixels on an edge (text, drawings and scenes have many, skin few).
    """
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)
    lightness, red_green, yellow_blue = cv2.split(lab)
    a = red_green.astype(np.float32) - 128.0
    b = yellow_blue.astype(np.float32) - 128.0
    chroma = magnitude(a, b)
    region = skin if skin.any() else np.ones(skin.shape, bool)
    l_mean, l_std = _masked_mean_std(lightness, None)
    a_mean, a_std = _masked_mean_std(red_green, None, -128.0)
    b_mean, b_std = _masked_mean_std(yellow_blue, None, -128.0)
    sa_mean, sa_std = _masked_mean_std(red_green, region, -128.0)
    sb_mean, sb_std = _masked_mean_std(yellow_blue, region, -128.0)
    r, g, bl = cv2.split(rgb)
    green_blue = cv2.max(g, bl) > r
    y = lightness.astype(np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    level = max(float(quantile_level(histogram(lightness), 0.5)), 8.0)
    edges = magnitude(gx, gy) > EDGE_LEVEL * 4.0 * level  # a 3x3 Sobel answers 4 to a unit step
    return {
        "frame_lightness": l_mean,
        "frame_lightness_spread": l_std,
        "frame_red_green": a_mean,
        "frame_yellow_blue": b_mean,
        "frame_chroma_spread": float(np.hypot(a_std, b_std)),
        "grey_fraction": fraction(chroma < GREY_CHROMA),
        "green_blue_fraction": fraction(green_blue),
        "skin_red_green": sa_mean,
        "skin_yellow_blue": sb_mean,
        "skin_chroma_spread": float(np.hypot(sa_std, sb_std)),
        "edge_density": fraction(edges),
        "skin_texture_contrast": texture_contrast(lightness, region),
    }


def shadow_fraction(brightest: np.ndarray, mask: np.ndarray, depth: float = 0.4) -> float:
    """Share of the masked skin more than ~2.5 stops (x`depth` in sRGB) below its own 90th percentile."""
    hist = histogram(brightest, mask)
    if hist.sum() <= 0:
        return 0.0
    cutoff = int(depth * quantile_level(hist, 0.9))
    return float(hist[:cutoff].sum() / hist.sum())


def noise_level(y: np.ndarray, mask: np.ndarray, step: int = 3) -> float:
    """Sensor/JPEG noise as a share of the median luma (Immerkaer's operator, robust median, subsampled).

    The operator cancels smooth image structure; what is left is mostly noise. Noise added after blur
    (a phone's sensor) restores fine-scale energy that the detail ratios would take for sharpness, so the
    blur models read this too.
    """
    if y.shape[0] < 3 or y.shape[1] < 3 or not mask.any():
        return 0.0
    # the operator is [1, -2, 1] down then across: evaluated at the sampled pixels only (borders reflected as
    # filter2D does), in integers for uint8 luma, it gives filter2D's values exactly at a fraction of the cost
    rows, cols = -(-y.shape[0] // step), -(-y.shape[1] // step)
    padded = cv2.copyMakeBorder(np.ascontiguousarray(y), 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    exact = np.int16 if y.dtype == np.uint8 else np.float32  # |response| <= 16 * 255 fits int16
    above, centre, below = (padded[k::step][:rows].astype(exact) for k in range(3))
    down = above + below - 2 * centre
    left, middle, right = (down[:, k::step][:, :cols] for k in range(3))
    response = left + right - 2 * middle
    sampled = mask[::step, ::step]
    values = np.abs(response[sampled])
    if values.size == 0:
        return 0.0
    level = max(_median(y[::step, ::step][sampled]), 8.0)
    # in float32 from the median on, as when the response came from filter2D (the measure keeps every digit)
    return float(1.4826 * np.float32(_median(values)) / 6.0 / level)


def _median(values: np.ndarray) -> float:
    """`np.median` of a 1-D array; of non-negative integers (luma, integer filter responses) from their counts:
    exact, and ~5x faster than the partial sort."""
    if values.dtype.kind not in "ui" or values.size == 0:
        return float(np.median(values))
    cumulative = np.cumsum(np.bincount(values))
    middle = np.searchsorted(cumulative, [(values.size - 1) // 2 + 1, values.size // 2 + 1])
    return float(middle.sum()) / 2.0  # the mean of the two middle values, as np.median takes for an even count


def texture_contrast(y: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of fine texture (luma minus a 2 px blur) over the mask, as a share of the median luma.

    Pores and spots are low-contrast; fur, grass and text strokes are high-contrast.
    """
    if not mask.any():
        return 0.0
    level = max(_masked_mean(y, mask_u8(mask)), 8.0)
    y = y.astype(np.float32)
    _, std = _masked_mean_std(y - cv2.GaussianBlur(y, (0, 0), 2.0), mask)
    return std / level


# --- what the texture is made of: colour noise and oriented strokes -------------------------------------------


def _masked_quantile(values: np.ndarray, mask: np.ndarray, q: float, step: float) -> float:
    """Quantile of non-negative float values under a mask, to `step` resolution (a 256-bin histogram: fast)."""
    codes = cv2.convertScaleAbs(values, alpha=1.0 / step)  # saturates at 255 * step
    return quantile_level(histogram(codes, mask), q) * step


def _mean_square(image: np.ndarray, m8: np.ndarray) -> float:
    """Mean of the squares under a uint8 mask, summed over channels (the masked L2 norm: no squared copy)."""
    return cv2.norm(image, cv2.NORM_L2SQR, mask=m8) / cv2.countNonZero(m8)


_FINE_KERNEL = (5, 5)  # 1 px Gaussian: what a lens keeps and a 2x downscale does not average away
_LUMA_WEIGHTS = np.array([[0.299, 0.587, 0.114]], np.float32)  # Rec. 601, as cv2.COLOR_RGB2GRAY


def fine_texture(rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """What the fine texture (image minus a 1 px blur) is made of: (colour_detail, fine_coherence, oriented_detail).

    - colour_detail: share of the fine detail's energy that differs between R, G and B (0: grey detail;
      2/3: independent channels). Pores, spots and edges seen through a lens change all three channels together
      (and JPEG stores colour at half resolution): ~0.03 on ACNE04 photos, <= 0.3 on the repo's synthetic skin
      with per-channel noise; random colour noise ~0.6.
    - fine_coherence: median coherence of the structure tensor of the fine luma detail over 5 px windows: ~0.2
      for isotropic texture (pores, sensor noise), ~0.65 for strokes (fur, hair, grain). The median, not an
      energy-weighted mean, so a face's few contour edges do not count.
    - oriented_detail: median of coherence x local fine contrast (% of the mean luma), so JPEG's faint block
      edges on smooth skin, coherent but weak, do not count either.
    """
    if rgb.shape[0] < 8 or rgb.shape[1] < 8 or not mask.any():
        return 0.0, 0.0, 0.0
    image = rgb.astype(np.float32)
    detail = cv2.subtract(image, cv2.GaussianBlur(image, _FINE_KERNEL, 1.0))
    m8 = mask_u8(mask)
    total = _mean_square(detail, m8)
    grey = _mean_square(cv2.transform(detail, np.ones((1, 3), np.float32)), m8) / 3.0  # R + G + B detail
    colour = max(total - grey, 0.0) / total if total > 1e-6 else 0.0
    luma_detail = cv2.transform(detail, _LUMA_WEIGHTS)
    gx = cv2.Sobel(luma_detail, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma_detail, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.blur(cv2.multiply(gx, gx), (5, 5))
    jyy = cv2.blur(cv2.multiply(gy, gy), (5, 5))
    jxy = cv2.blur(cv2.multiply(gx, gy), (5, 5))
    coherence = cv2.divide(magnitude(cv2.subtract(jxx, jyy), 2.0 * jxy), cv2.add(jxx, jyy) + 1e-3)
    means = [_masked_mean(channel, m8) for channel in cv2.split(rgb)]  # of the uint8 channels: exact sums
    level = max(float(sum(w * c for w, c in zip(_LUMA_WEIGHTS[0], means, strict=True))), 8.0)
    contrast = cv2.blur(cv2.absdiff(luma_detail, 0.0), (5, 5)) * (100.0 / level)  # local fine contrast, % of luma
    return (
        colour,
        _masked_quantile(coherence, mask, 0.5, 1.0 / 255.0),
        _masked_quantile(cv2.multiply(coherence, contrast), mask, 0.5, 0.05),
    )
