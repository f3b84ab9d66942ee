"""Measures -> verdict: which checks fail, the retake codes and hints the app shows.

Two layers. The learned verdict (`quality_gate/verdict.py`: one logistic regression per fault over the
measures that see it) raises too_dark, too_bright, blurry, motion_blur and uneven_lighting; the
out-of-distribution distance (`quality_gate/ood.py`) raises not_skin_photo. Around them, hand thresholds
on single measures stay as outer floors (overridable by name; by default they only catch the extreme
cases the models were not fitted on) and as the whole rule for low_resolution and no_skin. Single-measure checks
chosen on data like the models' thresholds: the lighting, blur and content CNNs' logits and the width of the face's
strongest edges (blur that a phone's noise hides from the texture measures).
Fitted by `bench/fit_quality_gate.py`, figures from `bench/calibrate_quality_gate.py`: see the module
docstrings there and docs/quality_gate.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import cv2
import numpy as np

from quality_gate import blur_cnn, borders, content_cnn, lighting_cnn, measures, ood, verdict
from quality_gate.skin import deep_shadow, skin_mask

RETAKE_CODES: dict[str, str] = {
    "too_dark": "The photo is too dark. Face a window or turn on a light.",
    "too_bright": "The photo is overexposed. Move out of direct light or turn off the flash.",
    "uneven_lighting": "Part of your face is in shadow. Face the light source evenly.",
    "blurry": "The photo is blurry. Hold the phone steady and tap to focus on your skin.",
    "motion_blur": "The photo is smeared by movement. Hold still and brace the phone (elbows on a table).",
    "low_resolution": "The photo is too small. Use the main camera at full resolution.",
    "no_skin": "We could not find skin in the photo. Fill the frame with the affected area.",
    "not_skin_photo": "This does not look like a close-up of skin. Fill the frame with the affected area.",
}
EXPOSURE_CODES = frozenset({"too_dark", "too_bright"})
BLUR_CODES = frozenset({"blurry", "motion_blur"})
CONTENT_CODES = frozenset({"no_skin", "not_skin_photo"})
LEARNED_MARGIN_SCALE = 4.0  # logits from the decision threshold that count as a full margin of 1
EDGE_MARGIN_PX = 1.0  # edge width from its limit that counts as a full margin of 1 (sigma 2 widens edges ~1.5 px)


@dataclass(frozen=True)
class Thresholds:
    """Every number the gate decides with; override any by name, e.g. `Thresholds(min_sharpness=3)`."""

    analysis_side: int = 640  # long side of the working copy every measure except resolution runs on
    trim_borders: bool = True  # judge the photo inside a uniform frame (a screenshot), not the frame (`borders`)
    min_short_side: int = 400  # px of the original photo; below this lesions are a few pixels wide
    min_skin_fraction: float = 0.05  # share of the frame that must be skin
    # outer floors on single measures (the learned verdict decides inside them)
    min_skin_brightness: float = 8.0  # median skin luma, 0..255 (below: black; very dark skin sits above)
    max_skin_brightness: float = 245.0  # median skin luma, 0..255
    max_clipped_fraction: float = 0.5  # share of skin (and blown-out pixels next to it) clipped
    min_uniformity: float = 0.03  # 5th/95th percentile of smoothed skin illumination
    max_deep_shadow: float = 0.6  # skin-coloured area too dark for the skin mask, x the skin: the 0.05 step above
    # every good valid-selection photo and copy (0.57 at most), so this outer floor refuses none of them
    min_sharpness: float = 2.0  # mean |Laplacian| of normalised luma on the face, x100
    # the lighting CNN's logit (`lighting_cnn`): the lowest at which the gate refuses at most 0.5 points more good
    # valid-selection photos and copies (`bench/lighting_cnn.py threshold`: 1.61% -> 1.81%, four networks; the
    # eight of rule L9: 1.91% -> 2.11%, the same threshold)
    max_lighting_logit: float = 1.75
    # the blur CNN's logit (`blur_cnn`): focus or motion blur seen patch by patch on the face; the lowest at which the
    # gate refuses at most 0.3 points more good valid-selection photos and copies (`bench/blur_cnn.py threshold`:
    # 1.71% -> 1.91%); inf: no such check
    max_blur_logit: float = 3.25
    # ... not judged when this share of its patches or more is too dark to read (`blur_cnn.unreadable_share`): a photo
    # that dark reads as soft to it, and `too_dark` is the hint that helps; > 1: always judged
    max_blur_unreadable: float = 0.5
    # degrees within which the direction of least detail is taken for a shadow's edge, not a smear, when the light is
    # uneven too (`shadow_edge_explains_smear`): a third of the way to perpendicular either side; 0: never
    shadow_edge_degrees: float = 30.0
    # the width of the face's strongest edges (`measures.edge_width`), px of the working copy: wider is blurred, whatever
    # the skin's texture or the noise a phone adds after the blur; the widest that refuses at most 0.1% of the good
    # valid-selection photos and copies, its budget searched with the codes' (`bench/fit_quality_gate.py
    # --edge-shares`); inf: no such check
    max_edge_width: float = 4.204
    # the content CNN's logit (`content_cnn`): not a photo of skin; the lowest, in 0.25 steps, at which the gate refuses
    # at most 0.3 points more good valid-selection photos and copies (`bench/content_cnn.py threshold`: 1.91% ->
    # 2.01%); judged only when no other quality code speaks (`judge`); inf: no such check
    max_content_logit: float = -0.5
    # the content CNN's logit this far below `max_content_logit` or further: sure of skin, and then the learned
    # not_skin_photo model (colour and texture statistics, which read more pigment as unusual colour) does not refuse
    # the photo alone; the distance and the ceilings still do. -inf: the learned model always speaks (rule C1, issue 12)
    content_sure_skin: float = -4.0
    # the lighting CNN's logit this far below `max_lighting_logit` or further: sure the light is even, and then the
    # lighting trees (the learned uneven_lighting model over the light measures) do not refuse the photo alone; the
    # network and the floors still do. -inf: the trees always speak (rule C2, issue 12)
    lighting_sure_even: float = -3.0
    # learned verdict and out-of-distribution check
    learned_verdict: bool = True  # False: only the hand thresholds above (and no not_skin_photo)
    lighting_trees: bool = True  # False: uneven_lighting from the lighting network and the floors, not the trees
    learned_offset: float = 0.0  # added to every learned decision threshold (logits): > 0 is more lenient
    max_ood_distance: float | None = None  # None: the threshold calibrated with the shipped statistics
    clip_reach_fraction: float = 0.03  # how far from skin a blown-out pixel still counts, x analysis_side
    face_reach_fraction: float = 0.03  # skin mask dilation for the sharpness region, x analysis_side
    illumination_sigma_fraction: float = 1 / 12  # smoothing for uniformity, x analysis_side


@dataclass(frozen=True)
class QualityReport:
    """Verdict for one photo; `margin` says how clear-cut it is (small = borderline)."""

    accepted: bool
    retake_codes: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)
    margin: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Check:
    code: str
    measure: str
    threshold: float
    kind: Literal["min", "max"]
    scale: float  # distance from the threshold that counts as a full margin of 1
    needs_skin: bool = False  # meaningless when measured on the whole frame for want of skin
    # (measure, limit): not judged when that measure reaches the limit (what it reads is missing); measures cached
    # before the guard existed read 0
    unless: tuple[str, float] | None = None

    def judged(self, values: dict[str, float]) -> bool:
        return self.unless is None or values.get(self.unless[0], 0.0) < self.unless[1]

    def fails(self, value: float) -> bool:
        return value < self.threshold if self.kind == "min" else value > self.threshold

    def distance(self, value: float) -> float:
        return min(1.0, abs(value - self.threshold) / max(self.scale, 1e-9))


def compute_measures(
    image: np.ndarray, thresholds: Thresholds, photo_size: tuple[int, int] | None = None
) -> dict[str, float]:
    """All raw measures of one RGB photo, keyed by name, with the out-of-distribution distance.

    `photo_size` (W, H) is the uploaded photo's size when `image` is a reduced decode of it (the resolution
    check is about the photo, every other measure about the pixels)."""
    values = image_measures(image, thresholds)
    if photo_size is not None:  # of the photo inside any frame `image_measures` trimmed
        width, height = photo_size
        values["short_side"] = float(min(width * values["content_width"], height * values["content_height"]))
    values["ood_distance"] = ood.ood_distance(values)
    return values


def trimmed(image: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """The photo inside a uniform frame around it (`borders.content_box`), what every measure reads; the photo
    itself when it has none or `trim_borders` is off."""
    box = borders.content_box(image) if thresholds.trim_borders else None
    return image if box is None else image[box[1] : box[3], box[0] : box[2]]


def image_measures(image: np.ndarray, thresholds: Thresholds) -> dict[str, float]:
    """The measures computed from pixels alone (the out-of-distribution statistics are fitted on these).

    Focus is judged on the working copy (long side `analysis_side`); skin, exposure, lighting and the
    colour/texture statistics on a copy half that size, which is as good for smooth quantities and 4x cheaper.
    A uniform frame around the photo (a screenshot, a letterboxed copy: `quality_gate.borders`) is trimmed first;
    `content_width` and `content_height` say what share of each side was kept.
    """
    full_height, full_width = image.shape[:2]
    image = trimmed(image, thresholds)
    height, width = image.shape[:2]
    side = thresholds.analysis_side
    work, half = measures.working_copies(image, side)
    y = cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2GRAY)  # uint8 luma: the fast paths
    brightest = measures.max_channel(half)
    green = np.ascontiguousarray(half[..., 1])
    skin_half = skin_mask(half, thresholds.min_skin_fraction, brightest)
    skin_fraction = measures.fraction(skin_half)
    luma_half = cv2.cvtColor(np.ascontiguousarray(half), cv2.COLOR_RGB2GRAY)
    clipped = brightest >= measures.CLIP_LEVEL
    has_skin = skin_fraction >= thresholds.min_skin_fraction
    everything = np.ones(luma_half.shape, dtype=bool)
    if has_skin:
        subject = measures.subject_mask(skin_half, clipped, round(thresholds.clip_reach_fraction * side / 2))
    else:  # judge exposure and focus on the whole frame: skin may be hidden by the very fault
        subject = everything
    face_half, face = focus_regions(skin_half, y.shape, thresholds)
    linear_half = cv2.LUT(luma_half, measures.LINEAR_LUT)
    subject_hist = measures.histogram(luma_half, subject)
    median_level = measures.quantile_level(subject_hist, 0.5)
    lit = skin_half if has_skin else subject
    light = measures.light_grid(linear_half, lit)
    gradient, planarity, slope, light_angle = measures.light_gradient(light)
    half_max, half_min, angle = measures.detail_spectrum(luma_half, face_half, coarse=4)
    gradients = measures.sobel_gradients(y)
    full_max, full_min, _ = measures.detail_spectrum(y, face, coarse=4, gradients=gradients)
    values = {
        "short_side": float(min(height, width)),
        "content_width": width / full_width,
        "content_height": height / full_height,
        "skin_fraction": skin_fraction,
        "skin_brightness": float(median_level),
        "skin_exposure": measures.stops(median_level),
        "skin_highlight": measures.stops(measures.quantile_level(measures.histogram(brightest, subject), 0.97)),
        "frame_highlight": measures.stops(measures.quantile_level(measures.histogram(brightest), 0.99)),
        "clipped_fraction": measures.clipped_fraction(clipped, subject),
        # of the green channel alone: a warm colour cast clips the skin's red, its brightest channel, at the same
        # light; a photo exposed too brightly clips green as well (green carries most of the light)
        "green_clipped_fraction": measures.clipped_fraction(green >= measures.CLIP_LEVEL, subject),
        "green_skin_highlight": measures.stops(measures.quantile_level(measures.histogram(green, subject), 0.97)),
        "uniformity": measures.uniformity(
            luma_half.astype(np.float32), lit, thresholds.illumination_sigma_fraction * side / 2
        ),
        "light_gradient": gradient,
        "light_planarity": planarity,
        "planar_gradient": gradient * planarity,
        "light_slope": slope,  # median local tilt of the inner skin's light, stops per frame side
        "light_angle": light_angle,  # direction the skin's light changes along, degrees (as blur_angle)
        "shadow_fraction": measures.shadow_fraction(brightest, lit),
        "deep_shadow": deep_shadow(half, skin_half, brightest) if has_skin else 0.0,
        # of a 3x3 median: the noise a phone adds after the blur is not read as detail (issue 12, blur + noise)
        "sharpness": measures.sharpness(cv2.medianBlur(y, 3), face),
        "edge_width": measures.edge_width(y, face, gradients),
        "detail_half_max": half_max,
        "detail_half_min": half_min,
        "motion_ratio": measures.direction_ratio(half_max, half_min),
        "blur_angle": angle,  # direction of the least detail (of the smear, when there is one), degrees
        # the same on the full working copy: a smear of 12 px there leaves less of its finest detail along the motion
        # than the half-size copy shows, where a px is two
        "motion_ratio_full": measures.direction_ratio(full_max, full_min),
        "noise": measures.noise_level(y, face),
    }
    values["blur_logit"], values["blur_unreadable"] = blur_cnn.blur_reading(y, face) if has_skin else (0.0, 0.0)
    values.update(measures.light_levels(light))
    values.update(measures.colour_texture(half, skin_half))
    values["colour_detail"], values["fine_coherence"], values["oriented_detail"] = measures.fine_texture(half, lit)
    values["log_sharpness"] = float(np.log(max(values["sharpness"], 1e-2)))
    # the CNN sees shapes of light the measures above cannot; only skin's lighting is judged
    values["lighting_logit"] = lighting_cnn.lighting_logit(half) if has_skin else 0.0
    # what the photo shows, read whole: a skin-coloured texture of something else passes the statistics above
    values["content_logit"] = content_cnn.content_logit(half)
    return values


def focus_regions(
    skin_half: np.ndarray, shape: tuple[int, ...], thresholds: Thresholds
) -> tuple[np.ndarray, np.ndarray]:
    """Where focus is judged: the face (the half-size copy's skin grown by `face_reach_fraction`) on the half-size
    copy and brought to the working copy's `shape`; the whole frame, both sizes, when too little skin was found
    (skin may be hidden by the very fault)."""
    if measures.fraction(skin_half) < thresholds.min_skin_fraction:
        return np.ones(skin_half.shape, dtype=bool), np.ones(shape[:2], dtype=bool)
    face_half = measures.dilate(skin_half, round(thresholds.face_reach_fraction * thresholds.analysis_side / 2))
    face = cv2.resize(face_half.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return face_half, face


def _checks(t: Thresholds) -> list[_Check]:
    checks = [
        _Check("too_dark", "skin_brightness", t.min_skin_brightness, "min", 64.0),
        _Check("too_bright", "skin_brightness", t.max_skin_brightness, "max", 64.0),
        _Check("too_bright", "clipped_fraction", t.max_clipped_fraction, "max", t.max_clipped_fraction),
        _Check("uneven_lighting", "uniformity", t.min_uniformity, "min", t.min_uniformity, True),
        _Check("uneven_lighting", "deep_shadow", t.max_deep_shadow, "max", t.max_deep_shadow, True),
        _Check("blurry", "sharpness", t.min_sharpness, "min", t.min_sharpness, True),
        _Check("low_resolution", "short_side", t.min_short_side, "min", t.min_short_side),
        _Check("no_skin", "skin_fraction", t.min_skin_fraction, "min", t.min_skin_fraction),
    ]
    if math.isfinite(t.max_edge_width):
        checks.append(_Check("blurry", "edge_width", t.max_edge_width, "max", EDGE_MARGIN_PX, True))
    if t.learned_verdict:  # learned like the verdict: off with it, and `learned_offset` loosens it too
        limit = t.max_lighting_logit + t.learned_offset
        checks.append(_Check("uneven_lighting", "lighting_logit", limit, "max", LEARNED_MARGIN_SCALE, True))
        if math.isfinite(t.max_blur_logit):
            limit = t.max_blur_logit + t.learned_offset
            unreadable = ("blur_unreadable", t.max_blur_unreadable)
            checks.append(_Check("blurry", "blur_logit", limit, "max", LEARNED_MARGIN_SCALE, True, unreadable))
    return checks


NEEDS_SKIN = frozenset({"blurry", "motion_blur", "uneven_lighting"})  # meaningless on a frame without skin


def assess(
    image: np.ndarray, thresholds: Thresholds | None = None, *, photo_size: tuple[int, int] | None = None
) -> QualityReport:
    """Judge an HxWx3 uint8 RGB photo (already EXIF-rotated); never raises for a valid one.

    Without enough skin, exposure is judged on the whole frame and blur/lighting are not judged.
    """
    t = thresholds or Thresholds()
    return judge(compute_measures(image, t, photo_size), t)


def shadow_edge_explains_smear(values: dict[str, float], degrees: float) -> bool:
    """Whether the direction of least fine detail (`blur_angle`) is the one the skin's light changes along
    (`light_angle`), within `degrees`: a shadow's edge takes detail away across itself, as a smear in that direction
    would. False for measures cached before `light_angle` existed."""
    if "light_angle" not in values:
        return False
    apart = abs(values["blur_angle"] - values["light_angle"]) % 180.0
    return min(apart, 180.0 - apart) < degrees


def sure_of_skin(values: dict[str, float], t: Thresholds) -> bool:
    """The content CNN reads a photo of skin with a wide margin (`Thresholds.content_sure_skin`). The learned
    not_skin_photo model reads the skin's colour, so it took darker, more saturated skin for something else where the
    network, trained on whole pictures of many tones, did not; on every non-skin image the gate was fitted or chosen
    on, the learned model never refused alone what the network was this sure of (the note on issue 12, rule C1)."""
    return _network_sure(values, "content_logit", t.max_content_logit, t.content_sure_skin, t)


def sure_of_even_light(values: dict[str, float], t: Thresholds) -> bool:
    """The lighting CNN reads the light as even with a wide margin (`Thresholds.lighting_sure_even`). The trees read
    quantiles and tilts of the skin's light, which tone copies and dark rooms move as much as a mild fault; no
    lighting fault they caught alone on selection or the fit sample left the network this sure (rule C2)."""
    return _network_sure(values, "lighting_logit", t.max_lighting_logit, t.lighting_sure_even, t)


def _network_sure(values: dict[str, float], measure: str, limit: float, margin: float, t: Thresholds) -> bool:
    """A network's logit `margin` or more below its threshold `limit` (moved by `learned_offset`); no say when the
    network is off (an infinite limit) or the measures predate it."""
    if not math.isfinite(limit) or measure not in values:
        return False
    return values[measure] - limit - t.learned_offset <= margin


def judge(
    values: dict[str, float], thresholds: Thresholds, models: dict | None = None, stats: dict | None = None
) -> QualityReport:
    """Verdict from raw measures; separate from `assess` so calibration can replay cached measures
    (`models`, `stats`: a learned verdict and out-of-distribution statistics other than the shipped ones, for
    the fit's threshold search).

    Precedence: an exposure code hides the content codes (a black or blown-out frame hides the skin, and
    the exposure hint is the one that helps); so does a blur code when only the learned not_skin_photo model
    doubts the content, not the distance or the ceilings (that model reads fine detail, which blur takes away:
    what the photo shows cannot be judged, and the focus hint is the one that helps); otherwise not_skin_photo
    is reported alone, since advice on focus or light is no use for a photo of something else, and it says what
    no_skin would. The content network's not_skin_photo (`content_cnn`) speaks only when no other quality code does;
    when it is sure of skin (`sure_of_skin`), the learned not_skin_photo model does not speak at all.
    With the light uneven, motion_blur is dropped when a shadow's edge explains it
    (`shadow_edge_explains_smear`): holding still would not help. The lighting trees do not speak when the lighting
    network is sure the light is even (`sure_of_even_light`). A photo too small (`low_resolution`) is not told to
    refocus or hold still as well: the focus measures and networks read px of a 640 px working copy, and a good photo
    sent small reads as soft to them (rule H1); the resolution hint is the one that helps.
    `margin`: for an accepted photo, the smallest normalised distance of any check to its threshold;
    for a rejected one, that of the failing check nearest its threshold (small = borderline either way).
    """
    t = thresholds
    has_skin = values["skin_fraction"] >= t.min_skin_fraction
    # (code, failed, distance)
    results: list[tuple[str, bool, float]] = []
    far = False  # out of distribution by the distance or a ceiling (not by the learned model alone)
    for c in _checks(t):
        if (has_skin or not c.needs_skin) and c.judged(values):
            value = values[c.measure]
            results.append((c.code, c.fails(value), c.distance(value)))
    if t.learned_verdict:
        for code, excess in verdict.logits(values, models).items():
            if code == "uneven_lighting" and not t.lighting_trees:
                continue
            if code == "not_skin_photo" and sure_of_skin(values, t):
                continue
            if code == "uneven_lighting" and sure_of_even_light(values, t):
                continue
            if has_skin or code not in NEEDS_SKIN:
                excess -= t.learned_offset
                results.append((code, excess > 0, min(1.0, abs(excess) / LEARNED_MARGIN_SCALE)))
        stats = stats or ood.load_stats()
        limit = t.max_ood_distance if t.max_ood_distance is not None else stats["threshold"]
        distance = values["ood_distance"]
        far = distance > limit or ood.exceeds_caps(values, stats)
        # max_ood_distance may be set to 0 by name (every photo out of distribution): no division by it
        results.append(("not_skin_photo", far, min(1.0, abs(distance - limit) / max(limit, 1e-9))))
    codes = list(dict.fromkeys(code for code, failed, _ in results if failed))
    if t.learned_verdict and math.isfinite(t.max_content_logit) and "content_logit" in values:  # (older caches lack it)
        content = values["content_logit"] - t.max_content_logit - t.learned_offset
        # a faulty photo of skin can look unlike skin to the network (a deep shadow, a blown-out frame): it speaks
        # only when no other quality code does, whose hint is then the one that helps
        if content <= 0 or set(codes) <= CONTENT_CODES:
            results.append(("not_skin_photo", content > 0, min(1.0, abs(content) / LEARNED_MARGIN_SCALE)))
            if content > 0 and "not_skin_photo" not in codes:
                codes.append("not_skin_photo")
    if (
        "motion_blur" in codes
        and "uneven_lighting" in codes
        and shadow_edge_explains_smear(values, t.shadow_edge_degrees)
    ):
        codes.remove("motion_blur")  # the shadow's hint is the one that helps; holding still would change nothing
    if "motion_blur" in codes and "blurry" in codes:  # one blur hint: the one that says what to do
        codes.remove("blurry")
    if "low_resolution" in codes:  # focus is read at the working copy's scale, which so small a photo never reaches
        codes = [code for code in codes if code not in BLUR_CODES]
    if EXPOSURE_CODES & set(codes) or (BLUR_CODES & set(codes) and not far):
        codes = [code for code in codes if code not in CONTENT_CODES]
    elif "not_skin_photo" in codes:
        codes = ["not_skin_photo"]
    deciding = [r for r in results if r[0] in codes and r[1]] or results
    margin = min(distance for _, _, distance in deciding)
    return QualityReport(
        accepted=not codes,
        retake_codes=codes,
        hints=[RETAKE_CODES[code] for code in codes],
        measures=values,
        margin=margin,
    )
