"""What the quality gate is fitted and judged on: degradations of real photos, skin-tone shifts, non-skin images.

Imported by `bench/fit_quality_gate.py` and `bench/calibrate_quality_gate.py`; nothing here is shipped.

- Degradations act as a camera would: exposure, side light and cast shadows in linear light (sRGB -> linear, x 2^k, back
  with clipping), focus blur (Gaussian), motion blur (a line kernel at any angle), small photos, sensor noise
  and JPEG re-encoding.
- Skin-tone shifts move the *skin* of a good photo along CIELAB L* and b* (a soft skin mask, texture kept),
  leaving background and highlights alone: a darker- or lighter-skinned person photographed the same way.
  Groups are named by the Individual Typology Angle (ITA = atan((L* - 50) / b*)), the usual dermatology scale.
- Non-skin images are generated in code (no download): textures, text, gradients, noise, geometric scenes,
  fur-like strokes, wood grain and fabric, green/blue scenes, grey scan-like images, plus crops of the non-skin parts of ACNE04
  photos (hair, clothes, walls, background). Each family is drawn from a seed, so fit and report sets are
  disjoint by seed; two families are kept out of the fit entirely.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import quality_gate
from pipelines.cases import colour
from quality_gate import policy
from quality_gate.measures import srgb_from_linear

Degradation = Callable[[np.ndarray], np.ndarray]
REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # linear-light luminance of the sRGB primaries


def _to_linear(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


@cache
def _linear_of_codes() -> np.ndarray:
    return _to_linear(np.arange(256, dtype=np.uint8))


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """sRGB (uint8 codes, or floats in 0..255) -> linear light in 0..1, float32. A uint8 image is looked up in a table
    made by the same float32 arithmetic (bit for bit the same, ~3x faster: the lighting networks' training copies
    spent a sixth of their time in this power)."""
    if image.dtype == np.uint8:
        return _linear_of_codes()[image]
    return _to_linear(image)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    return (srgb_from_linear(linear) * 255.0 + 0.5).astype(np.uint8)


def relight(image: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The photo with its light scaled by 2^`stops` per pixel (an H x W field), in linear light: how a shadow, a
    ramp or a lamp's fall-off acts on what the camera records."""
    return linear_to_srgb(srgb_to_linear(image) * (2.0**stops)[..., None])


def exposure(stops: float) -> Degradation:
    return lambda image: linear_to_srgb(srgb_to_linear(image) * 2.0**stops)


Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) as shares of the frame


def side_light(stops: float, angle: float = 0.0, box: Box | None = None) -> Degradation:
    """Light falling off by `stops` along direction `angle` (degrees; 0 = darker on the left): across the frame, or
    across `box` (the skin that matters: see `lesion_box`) and flat beyond it."""

    def apply(image: np.ndarray) -> np.ndarray:
        return relight(image, -stops * (1.0 - _position(image.shape[:2], angle, box)))

    return apply


def cast_shadow(
    stops: float, angle: float = 0.0, cover: float = 0.45, soft: float = 0.15, box: Box | None = None
) -> Degradation:
    """A shadow `stops` deep over the share `cover` of the frame (or of `box`), on the side `angle` points away from
    (0: the left part), with a penumbra `soft` x that width: a hand, a phone or a lamp shade between light and skin."""

    def apply(image: np.ndarray) -> np.ndarray:
        t = _position(image.shape[:2], angle, box)
        depth = np.clip((cover - t) / max(soft, 1e-3) + 0.5, 0.0, 1.0)
        return relight(image, -stops * depth)

    return apply


def _position(shape: tuple[int, int], angle: float, box: Box | None = None) -> np.ndarray:
    """Each pixel's position 0..1 along direction `angle` (degrees): across the frame, or across `box` (clipped
    to 0..1 beyond it, so a shadow placed on the box lands on the box whatever the frame around it holds)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    t = (xx - w / 2) * c + (yy - h / 2) * s
    if box is None:
        low, high = float(t.min()), float(t.max())
    else:
        corners = [((x * w - w / 2) * c + (y * h - h / 2) * s) for x in box[0::2] for y in box[1::2]]
        low, high = min(corners), max(corners)
    return np.clip((t - low) / max(high - low, 1.0), 0.0, 1.0)


LESION_BOX_MARGIN = 0.05  # share of the frame added around the lesions on each side
LESION_BOX_MIN = 0.5  # least width and height, as shares of the frame (one lesion would make a side light a step)


def grade_of(photo: str) -> str:
    """The ACNE04 severity grade a photo's name carries (`levle0_..` to `levle3_..`), or "" for other images."""
    head = Path(photo).name.split("_", 1)[0]
    return head.removeprefix("levle") if head.startswith("levle") else ""


def label_file(photo: Path) -> Path:
    """The YOLO label file of an ACNE04 photo (images/x.jpg -> labels/x.txt)."""
    return photo.parent.parent / "labels" / f"{photo.stem}.txt"


def lesion_boxes(label_file: Path) -> np.ndarray:
    """The rows (class, cx, cy, w, h; shares of the frame) of a YOLO label file: n x 5, empty without a label."""
    text = label_file.read_text().strip() if label_file.is_file() else ""
    return np.loadtxt(text.splitlines(), ndmin=2) if text else np.zeros((0, 5))


def lesion_box(label_file: Path, margin: float = LESION_BOX_MARGIN, least: float = LESION_BOX_MIN) -> Box | None:
    """The box around a photo's labelled lesions (YOLO label file), widened by `margin` and to at least `least` of
    the frame each way: skin a dermatologist needs to see. Placed on the frame, a shadow can fall on hair or on the
    room around a half face and change nothing a dermatologist looks at; placed on this box it lands on the box, but a
    shadow toward a corner can still darken a corner of it and leave the lesions lit (`bench/lighting_reach.py`
    measures how much of them each fault darkens). None without a label."""
    boxes = lesion_boxes(label_file)
    if not len(boxes):
        return None
    cx, cy, bw, bh = boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    x0, y0 = float((cx - bw / 2).min()) - margin, float((cy - bh / 2).min()) - margin
    x1, y1 = float((cx + bw / 2).max()) + margin, float((cy + bh / 2).max()) + margin
    (x0, x1), (y0, y1) = _widen(x0, x1, least), _widen(y0, y1, least)
    return x0, y0, x1, y1


def _widen(low: float, high: float, least: float) -> tuple[float, float]:
    """[low, high] widened about its centre to at least `least`, then moved inside [0, 1]."""
    centre, half = (low + high) / 2, max(high - low, least) / 2
    low, high = centre - half, centre + half
    shift = max(0.0, -low) - max(0.0, high - 1.0)
    return max(low + shift, 0.0), min(high + shift, 1.0)


def gaussian_blur(sigma: float) -> Degradation:
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


MOTION_SUPERSAMPLE = 8  # a smear is drawn this many times larger each way, then block-averaged down


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A straight smear `length` px long at `angle` degrees, one pixel wide, summing to 1.

    Drawn `MOTION_SUPERSAMPLE` times larger with sub-pixel endpoints, averaged back down and made symmetric about its
    centre, so it is `length` px long at every angle. Endpoints rounded to whole pixels (the drawing before 2026-11-29)
    made a "12 px" smear 13 px long at 0 and 90 degrees and about 10 px at 15, 75, 105 and 165, and the grid's catch
    of it depended on the rounding more than on the direction (issue 12's note, session 25). The generated non-skin
    streaks (`grain`) keep the whole-pixel drawing (`whole_pixel_kernel`).
    """
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    size = length + 3 - length % 2  # odd, with a pixel to spare each side for the drawn line's edge
    scale, shift = MOTION_SUPERSAMPLE, 4  # `shift`: endpoints in 1/16 px
    big = np.zeros((size * scale, size * scale), np.float32)
    centre = scale * (size - 1) / 2 + (scale - 1) / 2  # the middle pixel's centre, in the large drawing's pixels
    half = scale * (length - 1) / 2  # a line `scale` px thick has round caps `scale` / 2 long: `length` px in all
    ends = [(round((centre + k * half * c) * 2**shift), round((centre + k * half * s) * 2**shift)) for k in (-1, 1)]
    cv2.line(big, ends[0], ends[1], 1.0, scale, cv2.LINE_AA, shift)
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    kernel += kernel[::-1, ::-1].copy()  # a smear has no sign: the drawn line's half-pixel bias cancels
    return kernel / kernel.sum()


def whole_pixel_kernel(length: int, angle: float, line_type: int) -> np.ndarray:
    """A one-pixel line between endpoints rounded to whole pixels, summing to 1: with `cv2.LINE_AA`, the grid's smear
    before 2026-11-29 (`bench/motion_angles.py --kernel rounded` shows what it did); with `cv2.LINE_8`, the streaks of
    the generated non-skin images."""
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    centre, half = (size - 1) / 2, (length - 1) / 2
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    ends = [(round(centre + k * half * c), round(centre + k * half * s)) for k in (-1, 1)]
    cv2.line(kernel, ends[0], ends[1], 1.0, 1, line_type)
    return kernel / kernel.sum()


def smear(kernel: np.ndarray) -> Degradation:
    """The photo convolved with a smear kernel, its edges reflected (`motion_kernel`, or another drawing of it)."""
    return lambda image: cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def motion_blur(length: int, angle: float) -> Degradation:
    return smear(motion_kernel(length, angle))


def downscale(short_side: int) -> Degradation:
    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = short_side / min(height, width)
        size = (round(width * scale), round(height * scale))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    return apply


def noise_and_jpeg(sigma: float, quality: int, seed: int = 0) -> Degradation:
    """Sensor noise then JPEG: a blurred photo from a real phone is not noise-free."""

    def apply(image: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noisy = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)
        return jpeg(noisy, quality)

    return apply


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def then(*steps: Degradation) -> Degradation:
    def apply(image: np.ndarray) -> np.ndarray:
        for step in steps:
            image = step(image)
        return image

    return apply


# --- capture: what a phone changes without making the photo less useful ------------------------------------


# a phone's white balance set for other light (red and blue gains in linear light): `gate_capture`'s fine copies, and
# the lighting network's cast columns in cross-validation
WHITE_BALANCES: dict[str, tuple[float, float]] = {
    "warm white balance, mild": (1.15, 0.85),
    "warm white balance (tungsten)": (1.35, 0.7),
    "cool white balance, mild": (0.9, 1.15),
    "cool white balance (shade)": (0.8, 1.3),
}


def white_balance(red: float, blue: float) -> Degradation:
    """Channel gains in linear light (a camera's white balance set for another light), exposure kept by luma."""

    def apply(image: np.ndarray) -> np.ndarray:
        gains = np.array([red, 1.0, blue], np.float32)
        gains /= float(gains @ REC709_LUMA)
        return linear_to_srgb(srgb_to_linear(image) * gains)

    return apply


def sharpen(amount: float, sigma: float = 1.0) -> Degradation:
    """Unsharp mask, as phone pipelines apply it."""

    def apply(image: np.ndarray) -> np.ndarray:
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)

    return apply


def shadow_lift(strength: float) -> Degradation:
    """A tone curve that lifts dark tones (a phone's HDR or 'smart' tone mapping), highlights kept."""
    x = np.arange(256, dtype=np.float32) / 255.0
    curve = x + strength * x * (1.0 - x) ** 2 * 4.0
    lut = np.clip(curve * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return lambda image: cv2.LUT(image, lut)


def vignette(stops: float) -> Degradation:
    """Lens vignetting: light falling off with the square of the distance from the centre, `stops` darker at the
    corners, in linear light. A phone corrects most of its lens shading; what is left is a fraction of a stop."""

    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        rows, cols = np.ogrid[:height, :width]
        reach = ((cols - (width - 1) / 2) ** 2 + (rows - (height - 1) / 2) ** 2) / (
            ((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2
        )
        return relight(image, -stops * reach)

    return apply


def mirror(image: np.ndarray) -> np.ndarray:
    """The mirror image (a front camera's selfie)."""
    return np.ascontiguousarray(image[:, ::-1])


def turned(quarters: int) -> Degradation:
    """The frame turned by `quarters` quarter turns, counter-clockwise (a photo whose EXIF orientation was lost)."""
    return lambda image: np.ascontiguousarray(np.rot90(image, quarters))


def aspect_crop(ratio: float) -> Degradation:
    """The centre crop at width / height `ratio` (a portrait 3:4 or 9:16 frame), enlarged back to the photo's short
    side: the phone records that frame at full resolution, it does not send fewer pixels."""

    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if width / height > ratio:
            keep = round(height * ratio)
            start = (width - keep) // 2
            crop = image[:, start : start + keep]
        else:
            keep = round(width / ratio)
            start = (height - keep) // 2
            crop = image[start : start + keep]
        scale = min(height, width) / min(crop.shape[:2])
        size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
        return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_CUBIC)

    return apply


def in_screen(image: np.ndarray, colour: int, screen: tuple[int, int] = (1170, 2532)) -> tuple[np.ndarray, int, int]:
    """`image` centred in a portrait screen of `screen`'s aspect (W, H; an iPhone's by default) on flat `colour`, the
    screen sized to the photo so its pixels are kept: (canvas, x0, y0), the photo's top-left corner in the canvas."""
    height, width = image.shape[:2]
    scale = min(screen[0] / width, screen[1] / height)
    canvas_w, canvas_h = round(screen[0] / scale), round(screen[1] / scale)
    canvas = np.full((canvas_h, canvas_w, 3), colour, np.uint8)
    y0, x0 = (canvas_h - height) // 2, (canvas_w - width) // 2
    canvas[y0 : y0 + height, x0 : x0 + width] = image
    return canvas, x0, y0


def screenshot(colour: int) -> Degradation:
    """The photo as a screenshot of a phone's viewer shows it (`in_screen`): on flat black (a dark viewer, a chat app)
    or white (a light one); the frame is the only change."""
    return lambda image: in_screen(image, colour)[0]


# --- wide-gamut capture: a phone that records Display P3 and tags its JPEG with the profile ----------------------

# chromaticities (x, y) of the Display P3 primaries and of D65, its white and sRGB's (SMPTE EG 432-1)
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
SRGB_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
D65 = (0.3127, 0.3290)


def display_p3_from_srgb() -> np.ndarray:
    """Linear sRGB -> linear Display P3 (same white, so no adaptation)."""
    return np.linalg.solve(colour.rgb_to_xyz(P3_PRIMARIES, D65), colour.rgb_to_xyz(SRGB_PRIMARIES, D65))


def as_display_p3(image: np.ndarray) -> np.ndarray:
    """The values a phone that records Display P3 writes for the scene this sRGB photo shows (P3 uses sRGB's transfer
    curve). Read as sRGB, which is what software without colour management does, the colours come out duller."""
    linear = srgb_to_linear(image) @ display_p3_from_srgb().T.astype(np.float32)
    return linear_to_srgb(np.clip(linear, 0.0, 1.0))


@cache
def display_p3_profile() -> bytes:
    """A Display P3 ICC profile, made by the service's own `colour.matrix_profile` (no profile file ships with any
    package on this machine): what an iPhone's JPEG or HEIC carries in spirit; littleCMS reads it like Apple's."""
    return colour.matrix_profile(P3_PRIMARIES, D65, "Display P3 (skintrouble bench)")


def tagged_jpeg(image: np.ndarray, profile: bytes, quality: int = 95) -> bytes:
    """`image` (RGB values in the profile's space) as a JPEG that carries `profile`, as a phone writes it."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, icc_profile=profile)
    return buffer.getvalue()


# --- skin tone ---------------------------------------------------------------------------------------------------


def soft_skin_weight(image: np.ndarray) -> np.ndarray:
    """A soft 0..1 skin weight from the gate's own mask (only where to shift, not a measure)."""
    from quality_gate.skin import skin_mask

    mask = skin_mask(image, 0.05).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), 3.0)


def _skin_shift_weight(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Where a change of skin tone acts: (weight, CIELAB of the photo, the skin's median L*, the skin's core: where
    the soft skin weight is over 0.5). The weight is the soft skin weight less the specular highlights, light reflected
    at the skin's surface whatever its melanin: the brightest skin (above its 95th percentile of L*, fully at its
    99.5th) keeps its lightness."""
    weight = soft_skin_weight(image)
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness = lab[..., 0]
    core = weight > 0.5
    if core.any():
        skin_l, high_l, top_l = np.percentile(lightness[core], [50, 95, 99.5])
    else:
        skin_l, high_l, top_l = 60.0, 70.0, 90.0
    highlight = np.clip((lightness - high_l) / max(top_l - high_l, 1.0), 0.0, 1.0)
    return weight * (1.0 - highlight), lab, float(skin_l), core


def tone_shift(d_lightness: float, d_yellow: float) -> Degradation:
    """Move the skin along CIELAB L* (by d_lightness) and b* (by d_yellow), keeping its texture and highlights.

    Lightness is scaled rather than shifted, so pores and spots keep their relative contrast, as they do on
    darker skin. Its a* is kept, so a copy much darker than the photo is far more saturated for its lightness than
    the photo (see `melanin_shift`, which `bench/tone_fairness.py` judges beside it).
    """

    def apply(image: np.ndarray) -> np.ndarray:
        w, lab, skin_l, _ = _skin_shift_weight(image)
        gain = max(skin_l + d_lightness, 5.0) / max(skin_l, 5.0)
        lab[..., 0] = lab[..., 0] * (1.0 + w * (gain - 1.0))
        lab[..., 2] = lab[..., 2] + w * d_yellow
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)

    return apply


# Optical density of melanin at the sRGB primaries' wavelengths (~610, 550, 465 nm), relative to red: its absorption
# falls off as wavelength^-3.46 (Jacques 2013, "Optical properties of biological tissues: a review"), so more melanin
# darkens blue most, then green, then red. A camera's channels are broad bands, which flatten these ratios, so the
# truth lies between this and NEUTRAL_DENSITY (the skin darkened with its chromaticity kept): `melanin_shift` takes
# either, a bracket rather than a claim
MELANIN_DENSITY = (1.0, 1.43, 2.56)
NEUTRAL_DENSITY = (1.0, 1.0, 1.0)
DENSITY_MAX = 4.0  # densities searched for a darker target ITA (red transmits 10^-4 at the top: darker than any skin)
DENSITY_MIN = -1.0  # and for a lighter one (less pigment: 10x the light at the bottom, clipped long before)
MAX_CLIPPED_SKIN = 0.05  # a copy that reaches its target only by blowing out more of the skin than this is no copy


def _with_pigment(linear: np.ndarray, weight: np.ndarray, density: float, spectrum: np.ndarray) -> np.ndarray:
    """Linear RGB with `density` more pigment where `weight` is 1, less when negative (Beer-Lambert: transmission
    10^-density per channel, in proportion to `spectrum`); the skin's texture, shading and haemoglobin are kept."""
    return linear * np.power(10.0, -density * weight[..., None] * spectrum).astype(np.float32)


def melanin_shift(
    target_ita: float, spectrum: tuple[float, float, float] = MELANIN_DENSITY, metered: bool = False
) -> Degradation:
    """The photo with more pigment in its skin (less for a lighter target) until its ITA (median L*, b* over the
    photo's own skin core) reaches `target_ita`. Unlike `tone_shift`, a* and b* follow from what the pigment absorbs
    (`spectrum`: `MELANIN_DENSITY` or `NEUTRAL_DENSITY`); specular highlights are kept.

    `metered`: then re-exposed as a phone's average-metering auto-exposure would answer the darker (lighter) subject:
    the frame's mean linear luminance brought back to the photo's, since a phone does not record darker skin at the
    exposure it chose for lighter skin. Raises ValueError when no density reaches the target without blowing out the
    skin (a lighter skin with its chromaticity kept grows yellower as it lightens, so the neutral bracket reaches very
    light ITAs only by clipping to white).
    """
    density = np.array(spectrum, np.float32)

    def apply(image: np.ndarray) -> np.ndarray:
        w, _, _, core = _skin_shift_weight(image)
        if not core.any():
            return image
        linear = srgb_to_linear(image)
        skin, skin_w = linear[core][::4, None], w[core][::4, None]  # every 4th skin pixel: the medians hold

        def skin_ita(d: float) -> float:
            shifted = srgb_from_linear(_with_pigment(skin, skin_w, d, density)).astype(np.float32)
            lab = cv2.cvtColor(shifted, cv2.COLOR_RGB2Lab)[:, 0]
            return float(np.degrees(np.arctan2(np.median(lab[:, 0]) - 50.0, np.median(lab[:, 2]))))

        own = skin_ita(0.0)
        if own == target_ita:
            return image
        low, high = (0.0, DENSITY_MAX) if own > target_ita else (DENSITY_MIN, 0.0)
        for _ in range(16):  # ITA falls as density rises: bisection to ~6e-5
            middle = (low + high) / 2
            low, high = (middle, high) if skin_ita(middle) > target_ita else (low, middle)
        chosen = high if own > target_ita else low
        clipped = float((_with_pigment(skin, skin_w, chosen, density) >= 1.0).any(axis=-1).mean())
        if abs(skin_ita(chosen) - target_ita) > 1.0 or clipped > MAX_CLIPPED_SKIN:
            raise ValueError(f"ITA {target_ita} is out of this pigment's reach from {own:.1f}")
        shifted = _with_pigment(linear, w, chosen, density)
        if metered:
            before, after = float((linear @ REC709_LUMA).mean()), float((shifted @ REC709_LUMA).mean())
            shifted = shifted * (before / max(after, 1e-6))
        return linear_to_srgb(shifted)

    return apply


def skin_lab(image: np.ndarray) -> tuple[float, float, float]:
    """Median CIELAB L*, a*, b* of the photo's skin (the gate's skin mask, softened; nan without skin)."""
    weight = soft_skin_weight(image) > 0.5
    if not weight.any():
        return (float("nan"),) * 3
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lightness, red_green, yellow = (float(v) for v in np.median(lab[weight], axis=0))
    return lightness, red_green, yellow


def ita_angle(lightness: float, yellow: float) -> float:
    """Individual Typology Angle of a skin colour (CIELAB L*, b*), degrees."""
    return float(np.degrees(np.arctan2(lightness - 50.0, yellow)))


def ita(image: np.ndarray) -> float:
    """Individual Typology Angle of the photo's skin (median L*, b* over the gate's skin mask), degrees."""
    lightness, _, yellow = skin_lab(image)
    return ita_angle(lightness, yellow)


# ITA groups (Chardon et al. 1991; Del Bino et al. 2006)
ITA_GROUPS = (
    (55.0, "very light (ITA > 55)"),
    (41.0, "light (41..55)"),
    (28.0, "intermediate (28..41)"),
    (10.0, "tan (10..28)"),
    (-30.0, "brown (-30..10)"),
    (-999.0, "dark (< -30)"),
)


def ita_group(angle: float) -> str:
    for bound, name in ITA_GROUPS:
        if angle > bound:
            return name
    return ITA_GROUPS[-1][1]


TONE_SHIFTS: dict[str, tuple[float, float]] = {
    "tone L+8": (8.0, -2.0),
    "tone L-10 b+4": (-10.0, 4.0),
    "tone L-20 b+8": (-20.0, 8.0),
    "tone L-30 b+10": (-30.0, 10.0),
    "tone L-40 b+8": (-40.0, 8.0),
}


# --- non-skin images -------------------------------------------------------------------------------------------

SIDE = 640


def _noise(rng: np.random.Generator, sigma: float, shape=(SIDE, SIDE)) -> np.ndarray:
    field = rng.normal(0, 1, shape).astype(np.float32)
    if sigma > 0:
        field = cv2.GaussianBlur(field, (0, 0), sigma)
    return (field - field.mean()) / (field.std() + 1e-6)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _finish(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def texture(rng: np.random.Generator) -> np.ndarray:
    """Coloured multi-scale noise texture (stone, fabric, sand) in a random colour."""
    base = _colour(rng)
    img = np.zeros((SIDE, SIDE, 3), np.float32) + base
    for sigma, amp in ((0.0, rng.uniform(5, 30)), (3.0, rng.uniform(5, 30)), (15.0, rng.uniform(5, 40))):
        img += _noise(rng, sigma)[..., None] * amp * rng.uniform(0.6, 1.0, 3)
    return _finish(img)


def text(rng: np.random.Generator) -> np.ndarray:
    """Printed text on paper (or a screen) rendered with OpenCV."""
    paper = rng.uniform(200, 255) if rng.random() < 0.7 else rng.uniform(0, 60)
    img = np.clip(np.full((SIDE, SIDE, 3), paper, np.float32) + rng.uniform(-10, 10, 3), 0, 255).astype(np.uint8)
    ink = (20,) * 3 if paper > 128 else (230,) * 3
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "0123456789", "acne", "skin"]
    words += ["photo", "lorem", "ipsum", "dolor"]
    y = int(rng.integers(20, 50))
    while y < SIDE:
        line = " ".join(rng.choice(words, size=8))
        scale = float(rng.uniform(0.5, 1.5))
        cv2.putText(img, line, (int(rng.integers(0, 40)), y), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1 + int(scale > 1))
        y += int(30 * scale + rng.integers(5, 20))
    return _finish(img.astype(np.float32) + _noise(rng, 0)[..., None] * 3)


def gradient(rng: np.random.Generator) -> np.ndarray:
    """Smooth colour gradient (a sky, a wall under a lamp)."""
    a, b = _colour(rng), _colour(rng)
    t = np.linspace(0, 1, SIDE, dtype=np.float32)
    ramp = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    img = a * (1 - ramp) + b * ramp + np.zeros((SIDE, SIDE, 3), np.float32)
    return _finish(img + _noise(rng, 0)[..., None] * 2)


def noise(rng: np.random.Generator) -> np.ndarray:
    """Pure colour noise (a sensor with the lens cap on, a broken upload)."""
    img = rng.normal(128, rng.uniform(20, 80), (SIDE, SIDE, 3)).astype(np.float32)
    return _finish(cv2.GaussianBlur(img, (0, 0), rng.uniform(0.1, 2.0)))


def scene(rng: np.random.Generator) -> np.ndarray:
    """Geometric scene: a room or table with coloured rectangles, circles and lines."""
    img = np.zeros((SIDE, SIDE, 3), np.float32) + _colour(rng) * 0.6
    for _ in range(int(rng.integers(8, 30))):
        colour = tuple(float(c) for c in _colour(rng))
        kind = rng.integers(0, 3)
        p1 = (int(rng.integers(0, SIDE)), int(rng.integers(0, SIDE)))
        p2 = (int(rng.integers(0, SIDE)), int(rng.integers(0, SIDE)))
        if kind == 0:
            cv2.rectangle(img, p1, p2, colour, -1)
        elif kind == 1:
            cv2.circle(img, p1, int(rng.integers(10, 150)), colour, -1)
        else:
            cv2.line(img, p1, p2, colour, int(rng.integers(2, 15)))
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return _finish(img + _noise(rng, 0)[..., None] * 4)


def fur(rng: np.random.Generator) -> np.ndarray:
    """Animal fur: many short oriented strokes in browns, oranges, greys or black and white."""
    palettes = [((150, 100, 60), (220, 170, 120)), ((200, 120, 60), (240, 190, 130)), ((90, 90, 90), (200, 200, 200))]
    dark, light = (np.array(c, np.float32) for c in palettes[int(rng.integers(0, len(palettes)))])
    img = np.zeros((SIDE, SIDE, 3), np.float32) + (dark + light) / 2
    flow = _noise(rng, 60) * np.pi
    for _ in range(6000):
        x, y = int(rng.integers(0, SIDE)), int(rng.integers(0, SIDE))
        angle = float(flow[y, x]) + rng.normal(0, 0.2)
        length = rng.uniform(8, 25)
        end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
        colour = tuple(float(c) for c in (dark + (light - dark) * rng.random()))
        cv2.line(img, (x, y), end, colour, 1, cv2.LINE_AA)
    return _finish(img)


def grain(rng: np.random.Generator) -> np.ndarray:
    """Wood grain, brushed metal, woven or knitted fabric: noise smeared along one direction, in any colour.

    Oriented like fur but made differently (a line-blurred noise field, not drawn strokes): it teaches the
    not_skin_photo model that strongly oriented fine texture is not skin, while fur stays a kind never fitted.
    """
    palette = _colour(rng) if rng.random() < 0.5 else np.array((rng.uniform(120, 220), 90, 50), np.float32)
    kernel = whole_pixel_kernel(int(rng.integers(9, 41)), float(rng.uniform(0, 180)), cv2.LINE_8)
    streaks = cv2.filter2D(rng.normal(0, 1, (SIDE, SIDE)).astype(np.float32), -1, kernel)
    streaks /= streaks.std() + 1e-6
    if rng.random() < 0.5:  # a weave: a second direction at right angles
        streaks += cv2.filter2D(rng.normal(0, 1, (SIDE, SIDE)).astype(np.float32), -1, kernel.T) * 3
        streaks /= streaks.std() + 1e-6
    img = palette + streaks[..., None] * rng.uniform(3, 30) * rng.uniform(0.7, 1.0, 3)
    img += _noise(rng, 20)[..., None] * rng.uniform(0, 20)
    return _finish(img)


def foliage(rng: np.random.Generator) -> np.ndarray:
    """Grass, leaves or water: green- or blue-dominant texture."""
    hue = np.array((60, 150, 60) if rng.random() < 0.5 else (50, 100, 190), np.float32)
    img = np.zeros((SIDE, SIDE, 3), np.float32) + hue * rng.uniform(0.6, 1.2)
    img += _noise(rng, 1.0)[..., None] * 25 + _noise(rng, 8)[..., None] * 20
    return _finish(img)


def scan(rng: np.random.Generator) -> np.ndarray:
    """Grey medical-scan-like image: a bright blob with structure on black (X-ray, MRI, ultrasound)."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    cx, cy, r = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.25, 0.45)
    body = np.clip(1.0 - ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2, 0, 1) ** 0.3
    structure = 0.5 + 0.25 * _noise(rng, 6) + 0.15 * _noise(rng, 1.5)
    grey = body * structure * rng.uniform(150, 255)
    img = np.repeat(grey[..., None], 3, axis=2)
    if rng.random() < 0.3:  # a slight tint, as some viewers show
        img *= rng.uniform(0.9, 1.1, 3)
    return _finish(img + _noise(rng, 0)[..., None] * 4)


NON_SKIN: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "texture": texture,
    "text": text,
    "gradient": gradient,
    "noise": noise,
    "scene": scene,
    "fur": fur,
    "grain": grain,
    "foliage": foliage,
    "scan": scan,
}
HELD_OUT_FAMILIES = ("fur", "scan")  # never in the fit: the report says how the gate does on unseen kinds


def non_skin(family: str, seed: int) -> np.ndarray:
    return NON_SKIN[family](np.random.default_rng([zlib.crc32(family.encode()), seed]))


def background_crops(image: np.ndarray, rng: np.random.Generator, count: int = 2) -> list[np.ndarray]:
    """Crops of an ACNE04 photo's non-skin part (hair, clothes, wall), upscaled to 640 px: at most 10% skin."""
    from quality_gate.skin import lit_skin_mask

    h, w = image.shape[:2]
    skin = lit_skin_mask(image, 0.05)
    crops = []
    for _ in range(40):
        if len(crops) >= count:
            break
        side = int(rng.integers(min(h, w) // 5, min(h, w) // 2))
        y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        if skin[y : y + side, x : x + side].mean() <= 0.10:
            crop = image[y : y + side, x : x + side]
            crops.append(cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC))
    return crops


def skin_close_up(image: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A close-up of the photo's skin (at least 85% skin), upscaled: what the app's users mostly send."""
    from quality_gate.skin import lit_skin_mask

    h, w = image.shape[:2]
    skin = lit_skin_mask(image, 0.05)
    for _ in range(30):
        side = int(rng.integers(min(h, w) // 3, min(h, w) // 2 + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        if skin[y : y + side, x : x + side].mean() >= 0.85:
            return cv2.resize(image[y : y + side, x : x + side], (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    return None


def gate_fingerprint() -> str:
    """A digest of everything that decides the gate's verdict here: the `quality_gate` package's code, models and
    statistics, and its default thresholds. A bench that caches verdicts between runs keys them on it, so rows
    judged by an earlier gate are never read as this one's."""
    digest = hashlib.sha256()
    package = Path(quality_gate.__file__).parent
    for path in sorted(p for p in package.iterdir() if p.suffix in (".py", ".json", ".onnx")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(dataclasses.asdict(policy.Thresholds()), sort_keys=True).encode())
    return digest.hexdigest()[:16]
