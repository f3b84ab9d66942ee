"""Learned verdict: one small model per fault over a few measures, shipped as numbers in JSON.

A logistic regression for each fault, except uneven lighting: boosted trees (200 of depth 3), since whether a
shadow is a fault depends on how the light's spread, depth and tilt combine, which one linear score misses.

Each model answers "does this photo have fault X?" from the measures that can see X (exposure in stops,
highlights, detail ratios, lighting gradient...). The not_skin_photo model reads the out-of-distribution
distance and the colour statistics, and is fitted on skin rows against the generated non-skin images and
ACNE04 background crops of the fit set (the distance alone only knows what skin looks like); it does not read
how even the frame is, since a frame-filling close-up of skin is as even as a painted wall. Fitted by
`bench/fit_quality_gate.py` on ACNE04 `train` photos and degraded copies at many strengths (`fit_logistic`, plain
numpy; the trees with scikit-learn, a development dependency only); the decision threshold of each model (a logit)
is chosen on the *selection* part of `valid`, so that good photos of every skin tone pass. The numbers live in
`verdict.json` next to this file; applying them is a few dot products and ~600 comparisons, well under a millisecond.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from quality_gate.measures import LIGHT_LEVEL_NAMES

MODEL_PATH = Path(__file__).with_name("verdict.json")

# code -> the measures its model reads (derived ones below)
MODEL_FEATURES: dict[str, list[str]] = {
    "too_dark": ["skin_highlight", "frame_highlight"],
    # the brightest channel clips first on skin (red) when a photo is too bright, and under a warm colour cast at
    # the same light; the skin's light and its green channel tell the two apart (fitted with cast copies as fine)
    "too_bright": [
        "skin_exposure",
        "clipped_fraction",
        "skin_highlight",
        "frame_highlight",
        "frame_lightness",
        "green_clipped_fraction",
        "green_skin_highlight",
    ],
    "blurry": [
        "log_detail_half_max",
        "log_detail_half_min",
        "log_sharpness",
        "log_noise",
        "edge_density",
        "skin_exposure",
    ],
    # the direction of least detail on the half-size copy and on the full working copy: a 12 px smear is 6 px on the
    # first, which keeps much of its finest detail along the motion (rule M1 of 2026-11-29, docs/quality_gate.md)
    "motion_blur": [
        "motion_ratio",
        "motion_ratio_full",
        "log_detail_half_max",
        "log_detail_half_min",
        "log_noise",
        "log_sharpness",
    ],
    # the distance and the colour statistics; and the texture's direction and fine detail, with which real photos of
    # animals, objects and tissue are told from skin without refusing more severe acne (`bench/real_nonskin_cv.py`)
    "not_skin_photo": [
        "log_ood_distance",
        "skin_fraction",
        "grey_fraction",
        "green_blue_fraction",
        "skin_red_green",
        "skin_yellow_blue",
        "edge_density",
        "skin_texture_contrast",
        "fine_coherence",
        "oriented_detail",
        "log_detail_half_max",
        "log_sharpness",
    ],
    "uneven_lighting": [
        "uniformity",
        "light_gradient",
        "light_planarity",
        "planar_gradient",
        "shadow_fraction",
        "skin_fraction",
        "skin_exposure",
        *LIGHT_LEVEL_NAMES,
    ],
}
_LOGS = {
    "log_detail_min": "detail_min",
    "log_detail_half_max": "detail_half_max",
    "log_detail_half_min": "detail_half_min",
    "log_noise": "noise",
    "log_ood_distance": "ood_distance",
}


def feature(values: dict[str, float], name: str) -> float:
    if name in _LOGS:
        return math.log(max(values[_LOGS[name]], 1e-4))
    return float(values[name])


def inputs(values: dict[str, float], names: list[str]) -> np.ndarray:
    return np.array([feature(values, name) for name in names], dtype=np.float64)


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weights that give the faulty and the fine rows equal total weight (faults are the rarer rows)."""
    y = np.asarray(y, dtype=np.float64)
    positive = max(y.sum(), 1.0)
    negative = max(len(y) - y.sum(), 1.0)
    return np.where(y > 0.5, len(y) / (2 * positive), len(y) / (2 * negative))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, weights: np.ndarray | None = None, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method on standardised inputs.

    Returns (mean, scale, coef, intercept): logit = ((x - mean) / scale) @ coef + intercept.
    Classes are balanced unless `weights` are given.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    if weights is None:
        weights = balanced_weights(y)
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2 * len(y))
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (weights * (p - y)) + penalty * beta
        hessian = (z * (weights * p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, beta[:-1], float(beta[-1])


def logit(values: dict[str, float], model: dict) -> float:
    """The model's log-odds that the fault is there (a logistic regression, or boosted trees: `"kind": "trees"`)."""
    if model.get("kind") == "trees":
        return tree_logit(inputs(values, model["features"]), model)
    x = (inputs(values, model["features"]) - np.asarray(model["mean"])) / np.asarray(model["scale"])
    return float(x @ np.asarray(model["coef"]) + model["intercept"])


def tree_logit(x: np.ndarray, model: dict) -> float:
    """Log-odds of a boosted ensemble of small regression trees: `init` + `rate` x the leaf each tree sends x to.

    Each tree is stored as parallel lists (`feature`, `threshold`, `left`, `right`, `value`; `left` < 0 at a leaf),
    as scikit-learn grows them (`bench/fit_quality_gate.py`). A node sends x left when x[feature] <= threshold,
    compared in float32 as scikit-learn's trees do, so the served score is the fitted one.
    """
    point = [float(v) for v in np.asarray(x, dtype=np.float32)]
    total = 0.0
    for tree in model["trees"]:
        feature, threshold, left, right = tree["feature"], tree["threshold"], tree["left"], tree["right"]
        node = 0
        while left[node] >= 0:
            node = left[node] if point[feature[node]] <= threshold[node] else right[node]
        total += tree["value"][node]
    return float(model["init"] + model["rate"] * total)


def save_models(models: dict, path: Path = MODEL_PATH) -> None:
    path.write_text(json.dumps(models, indent=1) + "\n")


@lru_cache(maxsize=4)
def load_models(path: Path = MODEL_PATH) -> dict:
    """The shipped models; refuses a file fitted on other features than the gate computes."""
    models = json.loads(path.read_text())
    for code, model in models["codes"].items():
        if model["features"] != MODEL_FEATURES.get(code):
            raise ValueError(f"{path}: model {code} reads {model['features']}, the gate has {MODEL_FEATURES.get(code)}")
    return models


def logits(values: dict[str, float], models: dict | None = None) -> dict[str, float]:
    """Each learned code's logit minus its decision threshold: > 0 means the fault is there."""
    models = models or load_models()
    return {code: logit(values, model) - model["threshold"] for code, model in models["codes"].items()}
