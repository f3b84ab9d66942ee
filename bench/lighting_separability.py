"""How well can *any* blind measure tell side light from ACNE04's own lighting? (issue 12, uneven lighting)

    nice -n 10 .venv/bin/python bench/lighting_separability.py --photos 300

Takes train photos outside the gate's fit sample (`gate_measure.fit_sample`), each as it is and with side
light (a linear ramp of 2 / 3 / 5 stops across the frame) and a cast shadow (2 / 3 / 4 stops over 30-60% of the
frame, soft edge), all along one random direction per photo. For each copy it computes the gate's lighting
measures (`light_levels`: quantiles of the skin's light in stops, the share 1-2 stops below its lit part, the
frame's tilt; plane fits, uniformity, shadow fraction). Then, per degradation:

- each single statistic, thresholded at the 98th percentile of the good photos (either direction): the best
  catch rate;
- a gradient-boosted model over all of them, cross-validated by photo (5 folds): the catch rate at 2% false
  rejects of the same good photos.

If even the cross-validated model catches little at 2% false rejects, the good photos already contain lighting
like the degradation's, and no threshold on these measures can catch it without refusing good photos. A second
table reads `light_levels` only on skin inside the convex hull of the photo's labelled lesions (certainly skin:
labels the gate never has): how much a skin mask without hair and room would separate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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

GATE_MEASURES = (
    "uniformity",
    "light_gradient",
    "light_planarity",
    "planar_gradient",
    "light_slope",
    "shadow_fraction",
    "skin_exposure",
    *measures.LIGHT_LEVEL_NAMES,
)
MIN_LESIONS = 6  # photos with fewer labelled lesions have no hull worth the name


def statistics(image: np.ndarray, t: Thresholds) -> dict[str, float]:
    """The gate's lighting measures, on the gate's skin mask; empty without skin."""
    gate = image_measures(image, t)
    return {name: gate[name] for name in GATE_MEASURES} if gate["skin_fraction"] >= t.min_skin_fraction else {}


def lesion_hull(path: Path, side: int) -> np.ndarray | None:
    """The convex hull of the photo's labelled lesions on a `side` px square: skin for certain (labels, not served)."""
    boxes = gd.lesion_boxes(gd.label_file(path))
    if len(boxes) < MIN_LESIONS:
        return None
    hull = np.zeros((side, side), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull((boxes[:, 1:3] * side).astype(np.int32)), 1)
    return hull.astype(bool)


def hull_statistics(image: np.ndarray, hull: np.ndarray) -> dict[str, float]:
    """`light_levels` on the gate's skin mask inside the lesion hull: the light of skin without hair or room."""
    half = measures.working_copy(measures.working_copy(image, 640), hull.shape[1])
    skin = skin_mask(half, 0.05) & hull
    if skin.mean() < 0.05:
        return {}
    linear = cv2.LUT(cv2.cvtColor(half, cv2.COLOR_RGB2GRAY), measures.LINEAR_LUT)
    return measures.light_levels(measures.light_grid(linear, skin))


def copies(image: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    angle, cover, soft = rng.uniform(0, 360), rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.25)
    out = {"good": image}
    for stops in (2, 3, 5):
        out[f"side light {stops} stops"] = gd.side_light(stops, angle)(image)
    for stops in (2, 3, 4):
        out[f"cast shadow {stops} stops"] = gd.cast_shadow(stops, angle, cover, soft)(image)
    return out


def catch_rates(table: dict[str, list[dict[str, float]]], false_rejects: float, boosted: bool) -> None:
    names = sorted(table["good"][0])
    good = np.array([[row[n] for n in names] for row in table["good"]])
    keep = 1.0 - false_rejects
    print(f"{len(good)} photos; catch rate at {false_rejects:.0%} false rejects of the same good photos")
    print(f"{'degradation':22s} {'best single statistic':38s} {'boosted, 5-fold CV by photo' if boosted else '':>28s}")
    for kind, rows in table.items():
        if kind == "good":
            continue
        bad = np.array([[row[n] for n in names] for row in rows])
        best = max(
            (float(np.mean(sign * bad[:, i] > np.quantile(sign * good[:, i], keep))), f"{n} {'>' if sign > 0 else '<'}")
            for i, n in enumerate(names)
            for sign in (1, -1)
        )
        line = f"{kind:22s} {best[1]:30s} {best[0]:6.1%}"
        if boosted:
            x = np.vstack([good, bad])
            y = np.r_[np.zeros(len(good)), np.ones(len(bad))]
            groups = np.r_[np.arange(len(good)), np.arange(len(bad))]
            model = HistGradientBoostingClassifier(max_iter=200, random_state=0)
            score = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
            line += f" {float(np.mean(score[y == 1] > np.quantile(score[y == 0], keep))):28.1%}"
        print(line)
    spread = np.array([row["light_spread"] for row in table["good"]])
    print(
        f"good photos' light_spread (stops, 80th - 10th percentile of the skin's light): median "
        f"{np.median(spread):.2f}, 98th percentile {np.quantile(spread, 0.98):.2f}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--photos", type=int, default=300, help="train photos outside the fit sample")
    parser.add_argument("--false-rejects", type=float, default=0.02)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    _, rest = fit_sample()
    rng = np.random.default_rng(0)
    t = Thresholds()
    gate_table: dict[str, list[dict[str, float]]] = {}
    hull_table: dict[str, list[dict[str, float]]] = {}
    for path in track(rest[: args.photos], description="photos x lighting"):
        made = copies(load_rgb(path), rng)
        values = {kind: statistics(image, t) for kind, image in made.items()}
        if all(values.values()):  # skin found in every copy
            for kind, row in values.items():
                gate_table.setdefault(kind, []).append(row)
        hull = lesion_hull(path, t.analysis_side // 2)
        in_hull = {kind: hull_statistics(image, hull) for kind, image in made.items()} if hull is not None else {}
        if in_hull and all(in_hull.values()):
            for kind, row in in_hull.items():
                hull_table.setdefault(kind, []).append(row)
    print("\nThe gate's lighting measures on the gate's skin mask (hair and dark rooms pass its colour test):")
    catch_rates(gate_table, args.false_rejects, boosted=True)
    print(f"light_levels on that mask inside the convex hull of the photo's labelled lesions (>= {MIN_LESIONS}):")
    catch_rates(hull_table, args.false_rejects, boosted=False)


if __name__ == "__main__":
    main()
