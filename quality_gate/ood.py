"""Out-of-distribution check: is this a photo of skin like the ones the detector was trained on?

A small model shipped in the repo: a vector of colour and texture statistics the gate computes anyway
(`FEATURES`, all keys of the measures dict), and the mean and shrunk covariance of that vector over ACNE04
`train` photos, their skin close-up crops and degraded copies (`ood_stats.json`, written by
`bench/fit_quality_gate.py`). A photo's Mahalanobis distance to that distribution is the `ood_distance`
measure; the policy raises `not_skin_photo` above a threshold calibrated on the selection part of `valid`,
or when a measure exceeds a ceiling far beyond anything fitted (`caps`, the cheap checks: fine detail, colour
noise), or several measures jointly exceed theirs (`joint_caps`: sharp and oriented fine texture, i.e. strokes).
A skin-coloured texture of something else can pass all of these; a small network that reads the picture itself
(`content_cnn`) raises the same code after them.

Some features are one-sided: more skin in the frame, more fine detail, less oriented texture or a more even
colour than the training photos (faces against a dark room) is no reason to doubt a photo, so those are
clipped at the training median on that side before the distance is taken: a frame-filling close-up of
skin from a sharper camera must not read as unusual.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

STATS_PATH = Path(__file__).with_name("ood_stats.json")

# name -> which side is benign ("high": larger than usual is fine, "low": smaller is fine, "": both count)
FEATURES: dict[str, str] = {
    "skin_fraction": "high",
    "frame_lightness": "",
    "frame_lightness_spread": "low",
    "frame_red_green": "",
    "frame_yellow_blue": "",
    "frame_chroma_spread": "low",
    "grey_fraction": "low",
    "green_blue_fraction": "low",
    "skin_red_green": "",
    "skin_yellow_blue": "",
    "skin_chroma_spread": "low",
    "log_detail_half_max": "high",
    "log_sharpness": "",
    "edge_density": "",
    "skin_texture_contrast": "low",
}
SHRINKAGE = 0.1  # covariance shrunk towards its diagonal: robust with a few hundred photos


def _value(values: dict[str, float], name: str) -> float:
    """A measure, or the log of one (`log_<measure>`) when it is not stored under that name."""
    if name in values:
        return float(values[name])
    return math.log(max(float(values[name.removeprefix("log_")]), 1e-4))


def feature_vector(values: dict[str, float]) -> np.ndarray:
    return np.array([_value(values, name) for name in FEATURES], dtype=np.float64)


def fit_stats(rows: np.ndarray, *, quantile: float = 0.995, shrinkage: float = SHRINKAGE) -> dict:
    """Mean, clips and inverse covariance of feature rows (n x len(FEATURES)); `reference_distance` is the
    `quantile` of the fitted rows' own distances (a scale for the threshold, not the threshold itself)."""
    rows = np.asarray(rows, dtype=np.float64)
    median = np.median(rows, axis=0)
    sides = list(FEATURES.values())
    clip_low = np.array([median[i] if side == "low" else -np.inf for i, side in enumerate(sides)])
    clip_high = np.array([median[i] if side == "high" else np.inf for i, side in enumerate(sides)])
    clipped = np.clip(rows, clip_low, clip_high)
    mean = clipped.mean(axis=0)
    cov = np.cov(clipped, rowvar=False)
    cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov)) + 1e-9 * np.eye(len(mean))
    stats = {
        "features": list(FEATURES),
        "n": len(rows),
        "mean": mean.tolist(),
        "clip_low": [None if np.isinf(v) else float(v) for v in clip_low],
        "clip_high": [None if np.isinf(v) else float(v) for v in clip_high],
        "inverse_covariance": np.linalg.inv(cov).tolist(),
    }
    distances = [distance(row, stats) for row in rows]
    stats["reference_distance"] = float(np.quantile(distances, quantile))
    return stats


def distance(vector: np.ndarray, stats: dict) -> float:
    """Mahalanobis distance of one feature vector to the fitted distribution."""
    low = np.array([-np.inf if v is None else v for v in stats["clip_low"]])
    high = np.array([np.inf if v is None else v for v in stats["clip_high"]])
    delta = np.clip(vector, low, high) - np.asarray(stats["mean"])
    return float(np.sqrt(max(delta @ np.asarray(stats["inverse_covariance"]) @ delta, 0.0)))


# measure -> ceiling as a factor of the largest value seen in the fit: "cheap checks" for what no skin photo comes near
CAP_FACTORS: dict[str, float] = {
    # 2.5: the repo's synthetic skin photos (per-pixel noise as pores, far sharper than ACNE04) reach 2.2x the fitted
    # maximum and must pass (a sharp phone close-up may too); 1.5 also refused fur-like textures but 30% of those.
    "detail_half_max": 2.5,
    # colour noise: independent R, G, B detail reads ~0.6; the fitted rows (JPEG and noise copies included) reach
    # ~0.33, and synthetic skin with per-channel noise of 6 levels ~0.29. 1.5x keeps that margin for noisy phones.
    "colour_detail": 1.5,
}
STROKE_QUANTILE = 0.995  # of the fitted rows, for both halves of the joint ceiling below


def fit_joint_caps(values: list[dict[str, float]]) -> list[dict[str, float]]:
    """Joint ceilings: refuse only when *every* measure of one entry is exceeded.

    Strokes (fur, hair, brushwork, grain) are sharp *and* oriented; skin is one or the other at most: a sharp
    skin photo has isotropic pores (the repo's synthetic skin: coherence ~0.28 at detail up to 2.2x the fitted
    maximum), and motion-blurred skin is oriented but soft. So: fine detail above the fitted rows'
    `STROKE_QUANTILE`, and fine coherence above the same quantile of the sharper half of them.
    """
    detail = np.array([float(v["detail_half_max"]) for v in values])
    coherence = np.array([float(v["fine_coherence"]) for v in values])
    sharp = detail > np.median(detail)
    return [
        {
            "detail_half_max": float(np.quantile(detail, STROKE_QUANTILE)),
            "fine_coherence": float(np.quantile(coherence[sharp], STROKE_QUANTILE)),
        }
    ]


def fit_caps(values: list[dict[str, float]]) -> dict[str, float]:
    """Ceilings for measures no skin photo comes near: fine detail far beyond any fitted photo, even the copies
    with sensor noise added, is a drawing, text or a synthetic texture, not skin seen through a lens; fine detail
    that differs between R, G and B is noise or a rendering, not a lens's view of skin."""
    return {name: factor * max(float(v[name]) for v in values) for name, factor in CAP_FACTORS.items()}


def exceeds_caps(values: dict[str, float], stats: dict | None = None) -> bool:
    """A single ceiling exceeded, or every ceiling of one joint entry."""
    stats = stats or load_stats()
    if any(values[name] > cap for name, cap in stats.get("caps", {}).items()):
        return True
    return any(all(values[name] > cap for name, cap in joint.items()) for joint in stats.get("joint_caps", []))


def save_stats(stats: dict, path: Path = STATS_PATH) -> None:
    path.write_text(json.dumps(stats, indent=1) + "\n")


@lru_cache(maxsize=4)
def load_stats(path: Path = STATS_PATH) -> dict:
    """The shipped statistics; refuses a file written for another feature list."""
    stats = json.loads(path.read_text())
    if stats["features"] != list(FEATURES):
        raise ValueError(f"{path} was fitted on features {stats['features']}, the gate computes {list(FEATURES)}")
    return stats


def ood_distance(values: dict[str, float], stats: dict | None = None) -> float:
    return distance(feature_vector(values), stats or load_stats())
