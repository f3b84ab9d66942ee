"""How well can *any* blind measure tell side light from ACNE04's own lighting? (issue 12, uneven lighting)

    nice -n 10 .venv/bin/python bench/lighting_separability.py --photos 300

Takes train photos outside the gate's fit sample (`gate_measure.fit_sample`), each as it is and with side
light (a linear ramp of 2 / 3 / 5 stops across the frame) and a cast shadow (2 / 3 / 4 stops over 30-60% of the
frame, soft edge), all along one random direction per photo. For each copy it computes the gate's lighting
measures and more: quantiles of the skin's light in stops on a 24 px grid, the share of skin 1-2 stops below its
80th percentile, plane fits on the skin and on the whole frame. Then, per degradation:

- each single statistic, thresholded at the 98th percentile of the good photos (either direction): the best
  catch rate;
- a gradient-boosted model over all of them, cross-validated by photo (5 folds): the catch rate at 2% false
  rejects of the same good photos.

If even the cross-validated model catches little at 2% false rejects, the good photos already contain lighting
like the degradation's, and no threshold on these measures can catch it without refusing good photos.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from rich.progress import track
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold, cross_val_predict

from bench import gate_data as gd
from bench.gate_measure import fit_sample, load_rgb
from quality_gate import measures
from quality_gate.policy import Thresholds, image_measures
from quality_gate.skin import skin_mask

GATE_MEASURES = ("uniformity", "light_gradient", "light_planarity", "planar_gradient", "light_slope", "shadow_fraction")
GRID = 24  # cells across the long side for the regional light


def regional_light(image: np.ndarray) -> dict[str, float]:
    """Quantiles and spreads of the skin's light (stops from mid grey) over a coarse grid, and frame-wide tilt."""
    half = measures.working_copy(measures.working_copy(image, 640), 320)
    skin = skin_mask(half, 0.05)
    linear = cv2.LUT(cv2.cvtColor(half, cv2.COLOR_RGB2GRAY), measures.LINEAR_LUT)
    h, w = linear.shape
    scale = GRID / max(h, w)
    small = (max(2, round(w * scale)), max(2, round(h * scale)))
    weights = cv2.resize(skin.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    light = cv2.resize(linear * skin, small, interpolation=cv2.INTER_AREA)
    inside = weights > 0.5
    if inside.sum() < 8:
        return {}
    level = np.log2(np.maximum(light[inside] / weights[inside], 1e-5) / measures.MID_GREY)
    order = np.argsort(level)
    share = np.cumsum(weights[inside][order]) / weights[inside].sum()

    def quantile(q: float) -> float:
        return float(level[order][min(np.searchsorted(share, q), len(order) - 1)])

    top = quantile(0.8)
    values = {f"light_q{round(q * 100)}": quantile(q) for q in (0.1, 0.25, 0.5, 0.8, 0.95)}
    values["spread_80_10"], values["spread_80_25"] = top - quantile(0.1), top - quantile(0.25)
    for depth in (1.0, 1.5, 2.0):
        values[f"below_{depth}"] = float(weights[inside][level < top - depth].sum() / weights[inside].sum())
    frame = np.log2(np.maximum(cv2.resize(linear, small, interpolation=cv2.INTER_AREA), 1e-4)).ravel()
    rows, cols = np.mgrid[0 : small[1], 0 : small[0]]
    design = np.stack([np.ones(frame.size), cols.ravel() / GRID, rows.ravel() / GRID], axis=1)
    coef, *_ = np.linalg.lstsq(design, frame, rcond=None)
    values["frame_gradient"] = float(np.hypot(coef[1], coef[2]))
    return values


def statistics(image: np.ndarray, t: Thresholds) -> dict[str, float]:
    gate = image_measures(image, t)
    return (
        {name: gate[name] for name in GATE_MEASURES} | {"skin_exposure": gate["skin_exposure"]} | regional_light(image)
    )


def copies(image: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    angle, cover, soft = rng.uniform(0, 360), rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.25)
    out = {"good": image}
    for stops in (2, 3, 5):
        out[f"side light {stops} stops"] = gd.side_light(stops, angle)(image)
    for stops in (2, 3, 4):
        out[f"cast shadow {stops} stops"] = gd.cast_shadow(stops, angle, cover, soft)(image)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--photos", type=int, default=300, help="train photos outside the fit sample")
    parser.add_argument("--false-rejects", type=float, default=0.02)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    _, rest = fit_sample(500, 0)
    rng = np.random.default_rng(0)
    t = Thresholds()
    table: dict[str, list[dict[str, float]]] = {}
    for path in track(rest[: args.photos], description="photos x lighting"):
        made = {kind: statistics(image, t) for kind, image in copies(load_rgb(path), rng).items()}
        if all(len(values) > len(GATE_MEASURES) + 1 for values in made.values()):  # skin found in every copy
            for kind, values in made.items():
                table.setdefault(kind, []).append(values)
    names = sorted(table["good"][0])
    good = np.array([[row[n] for n in names] for row in table["good"]])
    keep = 1.0 - args.false_rejects
    print(f"{len(good)} photos; catch rate at {args.false_rejects:.0%} false rejects of the same good photos\n")
    print(f"{'degradation':22s} {'best single statistic':38s} {'boosted, 5-fold CV by photo':>28s}")
    for kind, rows in table.items():
        if kind == "good":
            continue
        bad = np.array([[row[n] for n in names] for row in rows])
        best = max(
            (float(np.mean(sign * bad[:, i] > np.quantile(sign * good[:, i], keep))), f"{n} {'>' if sign > 0 else '<'}")
            for i, n in enumerate(names)
            for sign in (1, -1)
        )
        x = np.vstack([good, bad])
        y = np.r_[np.zeros(len(good)), np.ones(len(bad))]
        groups = np.r_[np.arange(len(good)), np.arange(len(bad))]
        model = HistGradientBoostingClassifier(max_iter=200, random_state=0)
        score = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
        boosted = float(np.mean(score[y == 1] > np.quantile(score[y == 0], keep)))
        print(f"{kind:22s} {best[1]:30s} {best[0]:6.1%} {boosted:28.1%}")


if __name__ == "__main__":
    main()
