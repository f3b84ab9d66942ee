"""Thresholds -> verdict: which measures fail, the retake codes and hints the app shows.

Defaults come from `bench/calibrate_quality_gate.py` on 150 ACNE04 photos: 2.7 % false rejects.
Caught: +2/+3 stops, blur sigma 2/4, motion 25 px, small photos (>=96 %); -3 stops 79 %, but
-2 stops only 19 %, since some good ACNE04 photos are as dim as a darkened average one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from quality_gate import measures
from quality_gate.skin import skin_mask

RETAKE_CODES: dict[str, str] = {
    "too_dark": "The photo is too dark. Face a window or turn on a light.",
    "too_bright": "The photo is overexposed. Move out of direct light or turn off the flash.",
    "uneven_lighting": "Part of your face is in shadow. Face the light source evenly.",
    "blurry": "The photo is blurry. Hold the phone steady and tap to focus on your skin.",
    "low_resolution": "The photo is too small. Use the main camera at full resolution.",
    "no_skin": "We could not find skin in the photo. Fill the frame with the affected area.",
}


@dataclass(frozen=True)
class Thresholds:
    """Every number the gate decides with; override any by name, e.g. `Thresholds(min_sharpness=3)`."""

    analysis_side: int = 640  # long side of the working copy every measure except resolution runs on
    min_short_side: int = 400  # px of the original photo; below this lesions are a few pixels wide
    min_skin_fraction: float = 0.05  # share of the frame that must be skin
    min_skin_brightness: float = 55.0  # median skin luma, 0..255
    max_skin_brightness: float = 235.0  # median skin luma, 0..255
    max_clipped_fraction: float = 0.2  # share of skin (and blown-out pixels next to it) clipped
    min_uniformity: float = 0.12  # 5th/95th percentile of smoothed skin illumination
    min_sharpness: float = 6.5  # mean |Laplacian| of normalised luma on the face, x100
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

    def fails(self, value: float) -> bool:
        return value < self.threshold if self.kind == "min" else value > self.threshold

    def distance(self, value: float) -> float:
        return min(1.0, abs(value - self.threshold) / max(self.scale, 1e-9))


def compute_measures(
    image: np.ndarray, thresholds: Thresholds, photo_size: tuple[int, int] | None = None
) -> dict[str, float]:
    """All raw measures of one RGB photo, keyed by name; `photo_size` (W, H) when `image` is a reduced decode."""
    width, height = photo_size or (image.shape[1], image.shape[0])
    side = thresholds.analysis_side
    work = measures.working_copy(image, side)
    y = measures.luma(work)
    skin = skin_mask(work, thresholds.min_skin_fraction)
    skin_fraction = measures.fraction(skin)
    clipped = measures.clipped_mask(work)
    has_skin = skin_fraction >= thresholds.min_skin_fraction
    if has_skin:
        subject = measures.subject_mask(skin, clipped, round(thresholds.clip_reach_fraction * side))
        face = measures.dilate(skin, round(thresholds.face_reach_fraction * side))
    else:  # judge exposure and focus on the whole frame: skin may be hidden by the very fault
        subject = face = np.ones(y.shape, dtype=bool)
    return {
        "short_side": float(min(height, width)),
        "skin_fraction": skin_fraction,
        "skin_brightness": measures.brightness(y, subject),
        "clipped_fraction": measures.clipped_fraction(clipped, subject),
        "uniformity": measures.uniformity(
            y, skin if has_skin else subject, thresholds.illumination_sigma_fraction * side
        ),
        "sharpness": measures.sharpness(y, face),
    }


def _checks(t: Thresholds) -> list[_Check]:
    return [
        _Check("too_dark", "skin_brightness", t.min_skin_brightness, "min", 64.0),
        _Check("too_bright", "skin_brightness", t.max_skin_brightness, "max", 64.0),
        _Check("too_bright", "clipped_fraction", t.max_clipped_fraction, "max", t.max_clipped_fraction),
        _Check("uneven_lighting", "uniformity", t.min_uniformity, "min", t.min_uniformity, True),
        _Check("blurry", "sharpness", t.min_sharpness, "min", t.min_sharpness, True),
        _Check("low_resolution", "short_side", t.min_short_side, "min", t.min_short_side),
        _Check("no_skin", "skin_fraction", t.min_skin_fraction, "min", t.min_skin_fraction),
    ]


def assess(
    image: np.ndarray, thresholds: Thresholds | None = None, *, photo_size: tuple[int, int] | None = None
) -> QualityReport:
    """Judge an HxWx3 uint8 RGB photo (already EXIF-rotated); never raises for a valid one.

    Without enough skin, exposure is judged on the whole frame and blur/uniformity are not judged;
    `no_skin` is withheld when an exposure code is raised, since a blown-out or black photo hides the
    skin and the exposure hint is the one that helps.
    """
    t = thresholds or Thresholds()
    return judge(compute_measures(image, t, photo_size), t)


def judge(values: dict[str, float], thresholds: Thresholds) -> QualityReport:
    """Verdict from raw measures; separate from `assess` so calibration can replay cached measures.

    `margin`: for an accepted photo, the smallest normalised distance of any measure to its threshold;
    for a rejected one, that of the failing measure nearest its threshold (small = borderline either way).
    """
    has_skin = values["skin_fraction"] >= thresholds.min_skin_fraction
    checks = [c for c in _checks(thresholds) if has_skin or not c.needs_skin]
    failed = [c for c in checks if c.fails(values[c.measure])]
    codes = list(dict.fromkeys(c.code for c in failed))
    if "no_skin" in codes and {"too_dark", "too_bright"} & set(codes):
        codes.remove("no_skin")
        failed = [c for c in failed if c.code != "no_skin"]
    deciding = failed or checks
    margin = min(c.distance(values[c.measure]) for c in deciding)
    return QualityReport(
        accepted=not codes,
        retake_codes=codes,
        hints=[RETAKE_CODES[code] for code in codes],
        measures=values,
        margin=margin,
    )
