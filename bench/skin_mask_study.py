"""A weakly supervised skin mask that leaves out hair and room: does it make cast shadows separable? (issue 12)

    nice -n 10 .venv/bin/python bench/skin_mask_study.py --photos 300

Protocol. Fit on the gate's fit sample, report on photos no fit ever read:

- Fit: the train photos of `gate_measure.fit_sample()[0]` with >= 6 labelled lesions, each as it is and with
  one cast shadow (2-4 stops, random side, cover and penumbra). On the gate's half copy (320 px long side) in 8x8 px
  cells: candidates are the cells the colour rule (`skin_mask`) covers at least half; positive the candidates at
  least half inside the convex hull of the lesion boxes (skin for certain); unlabelled the other candidates.
  Positive-unlabelled learning: a classifier positive-vs-unlabelled ranks cells like the true posterior of skin.
  The classifier is a logistic regression (standardised features: a few numbers, could ship as JSON) over cell
  features that do not depend on absolute or relative brightness, so a shadow does not throw skin out: rg
  chromaticity and its distance from the photo's lit skin in units of that skin's spread, saturation relative to
  the lit skin's, fine texture of log luma (contrast normalised by the local light), structure-tensor coherence
  of that fine detail (hair strands are coherent), chroma variation within the cell, the colour rule's cover,
  distance to the frame border. The cell threshold keeps 90% (`--keep`) of the positive cells of the fit photos
  as they are. The learned mask is the colour mask inside the kept cells (never more than the colour mask).
- Report: the first `--photos` train photos outside the fit sample (`fit_sample()[1]`), each with the
  copies of `bench/lighting_separability.py` (same seeds: side light 2/3/5 stops, cast shadow 2/3/4 stops). For
  the colour mask, the learned mask, a control (the colour mask in the central cells, as many hull cells
  kept as the learned mask) and (photos with >= 6 lesions) the colour mask inside the lesion hull: the
  good photos' light spread (median / 98th percentile), the best single `light_levels` statistic's catch rate at
  2% false rejects per degradation (`lighting_separability.catch_rates`), and the share of hull cells each mask
  keeps on good and cast-shadow copies, all of them and those the shadow darkens by >= 1 stop.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from rich.progress import track
from sklearn.linear_model import LogisticRegression

from bench import gate_data as gd
from bench.gate_measure import fit_sample, load_rgb
from bench.lighting_separability import MIN_LESIONS, catch_rates, copies, lesion_hull
from quality_gate import measures
from quality_gate.skin import skin_mask

SIDE = 320  # the gate's half copy
CELL = 8  # px per cell side on the half copy
MIN_SKIN = 0.05  # share of the frame a mask must cover to be read (the gate's min_skin_fraction)
FEATURES = (
    "r",
    "g",
    "chroma_dr",
    "chroma_dg",
    "chroma_dist",
    "log_saturation_ratio",
    "fine_contrast",
    "gradient_energy",
    "coherence",
    "chroma_variation",
    "colour_cover",
    "border",
)


def half_copy(image: np.ndarray) -> np.ndarray:
    return measures.working_copy(measures.working_copy(image, 640), SIDE)


def cell_mean(values: np.ndarray) -> np.ndarray:
    h, w = values.shape
    return cv2.resize(values, (w // CELL, h // CELL), interpolation=cv2.INTER_AREA)


def cells_of(mask: np.ndarray) -> np.ndarray:
    """Share of each cell the pixel mask covers."""
    h, w = mask.shape
    return cell_mean(mask[: h - h % CELL, : w - w % CELL].astype(np.float32))


def cell_features(half: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cells x features, colour cover per cell): nothing here moves when the light is scaled."""
    h, w = colour.shape
    half = np.ascontiguousarray(half[: h - h % CELL, : w - w % CELL])
    colour = colour[: h - h % CELL, : w - w % CELL]
    red, green, blue = (c.astype(np.float32) for c in cv2.split(half))
    total = red + green + blue + 3.0
    r, g = red / total, green / total
    top = np.maximum(np.maximum(red, green), blue)
    saturation = (top - np.minimum(np.minimum(red, green), blue)) / (top + 1.0)
    log_y = np.log2(cv2.cvtColor(half, cv2.COLOR_RGB2GRAY).astype(np.float32) + 4.0)
    fine = log_y - cv2.GaussianBlur(log_y, (5, 5), 1.0)
    smooth = cv2.GaussianBlur(log_y, (3, 3), 0.7)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8
    jxx, jyy, jxy = (cell_mean(v) for v in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-6)
    cr, cg, csat = cell_mean(r), cell_mean(g), cell_mean(saturation)
    variation = np.sqrt(np.maximum(cell_mean(r * r) - cr * cr, 0) + np.maximum(cell_mean(g * g) - cg * cg, 0))
    cover = cells_of(colour)
    # the lit skin: colour-rule pixels at or above their median luma
    lit = colour & (log_y >= np.median(log_y[colour])) if colour.any() else np.ones_like(colour)
    mr, mg = float(r[lit].mean()), float(g[lit].mean())
    sr, sg = max(float(r[lit].std()), 0.01), max(float(g[lit].std()), 0.01)
    msat = max(float(np.median(saturation[lit])), 0.02)
    dr, dg = (cr - mr) / sr, (cg - mg) / sg
    ch, cw = cr.shape
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    border = np.minimum(np.minimum(xx + 0.5, cw - 0.5 - xx) / cw, np.minimum(yy + 0.5, ch - 0.5 - yy) / ch)
    columns = (
        cr,
        cg,
        dr,
        dg,
        np.log1p(dr * dr + dg * dg),
        np.log(np.maximum(csat, 1e-3) / msat),
        np.sqrt(cell_mean(fine * fine)),
        np.log(jxx + jyy + 1e-5),
        coherence,
        variation,
        cover,
        np.minimum(border, 0.25),
    )
    return np.stack([c.ravel() for c in columns], axis=1), cover


class CellModel:
    """Standardised logistic regression over `FEATURES` and a threshold on its score: a few numbers (`as_json`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, used: list[int]) -> None:
        self.used = used
        x = x[:, used]
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-9
        self.model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(self.z(x), y)
        self.threshold = 0.0
        self.centre = 0.0  # the control: border distance (share of the side) that keeps as many hull cells

    def z(self, x: np.ndarray) -> np.ndarray:
        return (x[:, self.used] - self.mean) / self.scale

    def score(self, x: np.ndarray) -> np.ndarray:
        return self.z(x) @ self.model.coef_[0] + self.model.intercept_[0]

    def as_json(self) -> str:
        return json.dumps(
            {
                "features": [FEATURES[i] for i in self.used],
                "mean": np.round(self.mean, 5).tolist(),
                "scale": np.round(self.scale, 5).tolist(),
                "coef": np.round(self.model.coef_[0], 4).tolist(),
                "intercept": round(float(self.model.intercept_[0]), 4),
                "threshold": round(self.threshold, 4),
            }
        )


def learned_masks(half: np.ndarray, colour: np.ndarray, model: CellModel) -> tuple[np.ndarray, np.ndarray]:
    """The colour mask inside the cells the model keeps (candidates only), and inside the central cells (control)."""
    x, cover = cell_features(half, colour)
    candidate = cover.ravel() >= 0.5
    learned = (model.score(x) >= model.threshold) & candidate
    centre = (x[:, FEATURES.index("border")] >= model.centre) & candidate
    return upsample(learned.reshape(cover.shape), colour), upsample(centre.reshape(cover.shape), colour)


def upsample(keep: np.ndarray, colour: np.ndarray) -> np.ndarray:
    up = np.zeros(colour.shape, np.uint8)
    h, w = keep.shape
    up[: h * CELL, : w * CELL] = cv2.resize(
        keep.astype(np.uint8), (w * CELL, h * CELL), interpolation=cv2.INTER_NEAREST
    )
    return colour & up.astype(bool)


def fit(min_lesions: int, keep: float, limit: int, drop: list[str]) -> CellModel:
    photos = fit_sample()[0][:limit]
    rng = np.random.default_rng(1)
    xs, ys, good_positive = [], [], []
    for path in track(photos, description="fit photos (cells)"):
        hull = lesion_hull(path, SIDE)
        if hull is None:
            continue
        image = load_rgb(path)
        stops, angle = rng.uniform(2, 4), rng.uniform(0, 360)
        shadowed = gd.cast_shadow(stops, angle, rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.25))(image)
        for index, copy in enumerate((image, shadowed)):
            half = half_copy(copy)
            colour = skin_mask(half, MIN_SKIN)
            if measures.fraction(colour) < MIN_SKIN:
                continue
            x, cover = cell_features(half, colour)
            candidate = cover.ravel() >= 0.5
            positive = cells_of(hull[: half.shape[0], : half.shape[1]]).ravel() >= 0.5
            xs.append(x[candidate])
            ys.append(positive[candidate])
            if index == 0:
                good_positive.append(x[candidate & positive])
    x, y = np.vstack(xs), np.concatenate(ys)
    model = CellModel(x, y, [i for i, name in enumerate(FEATURES) if name not in drop])
    model.threshold = float(np.quantile(model.score(np.vstack(good_positive)), 1.0 - keep))
    model.centre = float(np.quantile(np.vstack(good_positive)[:, FEATURES.index("border")], 1.0 - keep))
    unlabelled_kept = float(np.mean(model.score(x[~y]) >= model.threshold))
    print(
        f"fit: {len(good_positive)} photos with >= {min_lesions} lesions, as is + one cast shadow; "
        f"{int(y.sum())} positive (hull) and {int((~y).sum())} unlabelled candidate cells; "
        f"threshold keeps {keep:.0%} of the good copies' hull cells and {unlabelled_kept:.0%} of the unlabelled"
    )
    print(
        "coefficients (standardised features): "
        + ", ".join(f"{FEATURES[i]} {c:+.2f}" for i, c in zip(model.used, model.model.coef_[0], strict=True))
    )
    print(f"model as JSON: {model.as_json()}")
    print(
        f"control 'centre': the colour mask's cells >= {model.centre:.3f} x the side from the border (keeps as many)\n"
    )
    return model


def levels(linear: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    if measures.fraction(mask) < MIN_SKIN:
        return {}
    grid = measures.light_grid(linear, mask)
    return measures.light_levels(grid) if grid is not None else {}


MASKS = ("colour", "learned", "centre", "hull")
LEARNED = ("colour", "learned", "centre")  # the masks the gate could have


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--photos", type=int, default=300, help="train photos outside the fit sample (holdout)")
    parser.add_argument("--keep", type=float, default=0.9, help="share of the fit photos' hull cells to keep")
    parser.add_argument("--false-rejects", type=float, default=0.02)
    parser.add_argument("--fit-photos", type=int, default=500, help="of the fit sample (fewer: a quick smoke run)")
    parser.add_argument("--drop", default="", help="features to leave out of the model, comma-separated (ablation)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    start = time.perf_counter()
    model = fit(MIN_LESIONS, args.keep, args.fit_photos, args.drop.split(",") if args.drop else [])
    _, rest = fit_sample()
    rng = np.random.default_rng(0)  # the same copies as bench/lighting_separability.py
    both: dict[str, dict[str, list[dict[str, float]]]] = {m: {} for m in MASKS}
    hulled: dict[str, dict[str, list[dict[str, float]]]] = {m: {} for m in MASKS}
    kept: dict[tuple[str, str, str], list[float]] = {}  # (mask, copy, "all"/"shadowed") -> [kept, total]
    area: dict[str, list[float]] = {m: [] for m in MASKS}
    timings = []
    for path in track(rest[: args.photos], description="holdout photos x lighting"):
        made = copies(load_rgb(path), rng)
        hull = lesion_hull(path, SIDE)
        rows: dict[str, dict[str, dict[str, float]]] = {m: {} for m in MASKS}
        good_light = None
        for kind, image in made.items():
            half = half_copy(image)
            linear = cv2.LUT(cv2.cvtColor(half, cv2.COLOR_RGB2GRAY), measures.LINEAR_LUT)
            colour = skin_mask(half, MIN_SKIN)
            tick = time.perf_counter()
            learned, centre = learned_masks(half, colour, model)
            masks = {"colour": colour, "learned": learned, "centre": centre}
            timings.append(time.perf_counter() - tick)
            if hull is not None:
                masks["hull"] = colour & hull[: half.shape[0], : half.shape[1]]
            for name, mask in masks.items():
                rows[name][kind] = levels(linear, mask)
                if kind == "good":
                    area[name].append(measures.fraction(mask))
            if hull is None or not (kind == "good" or kind.startswith("cast shadow")):
                continue
            hull_cells = cells_of(hull[: half.shape[0], : half.shape[1]]) >= 0.5
            light = cell_mean(linear[: hull_cells.shape[0] * CELL, : hull_cells.shape[1] * CELL].astype(np.float32))
            if kind == "good":
                good_light = light
            dark = hull_cells & (light <= 0.5 * good_light)
            for name, mask in masks.items():
                inside = cells_of(mask) >= 0.5
                for which, cells in (("all", hull_cells), ("shadowed", dark)):
                    tally = kept.setdefault((name, kind, which), [0.0, 0.0])
                    tally[0] += float(np.count_nonzero(inside & cells))
                    tally[1] += float(np.count_nonzero(cells))
        if all(all(rows[m].values()) for m in LEARNED):
            for name in LEARNED:
                for kind, row in rows[name].items():
                    both[name].setdefault(kind, []).append(row)
        if hull is not None and all(all(rows[m].values()) for m in MASKS):
            for name in MASKS:
                for kind, row in rows[name].items():
                    hulled[name].setdefault(kind, []).append(row)

    print(
        f"\nheld-out photos: {min(args.photos, len(rest))}; learned mask costs {1e3 * np.median(timings):.1f} ms a copy"
    )
    print(
        "mask's share of the frame on good photos (mean): "
        + ", ".join(f"{m} {np.mean(a):.1%}" for m, a in area.items() if a)
    )
    print("\nshare of hull cells (>= half inside the lesion hull) that each mask covers >= half of, photos with a hull")
    kinds = ["good", "cast shadow 2 stops", "cast shadow 3 stops", "cast shadow 4 stops"]
    print(
        f"{'mask':10s} "
        + " ".join(f"{k.replace('cast shadow', 'shadow'):>16s}" for k in kinds)
        + "   darkened >= 1 stop: "
        + " ".join(f"{k.split()[2]} stops" for k in kinds[1:])
    )
    for name in MASKS:
        line = f"{name:10s} " + " ".join(
            f"{kept[(name, k, 'all')][0] / max(kept[(name, k, 'all')][1], 1):16.1%}" for k in kinds
        )
        line += "   " + " ".join(
            f"{kept[(name, k, 'shadowed')][0] / max(kept[(name, k, 'shadowed')][1], 1):7.1%}" for k in kinds[1:]
        )
        print(line)
    print()
    for name in LEARNED:
        print(
            f"== {name} mask; photos where the colour, learned and centre masks find >= {MIN_SKIN:.0%} skin in every copy"
        )
        catch_rates(both[name], args.false_rejects, boosted=False)
    for name in MASKS:
        print(f"== {name} mask; photos with >= {MIN_LESIONS} lesions where all four masks find skin in every copy")
        catch_rates(hulled[name], args.false_rejects, boosted=False)
    print(f"runtime {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
