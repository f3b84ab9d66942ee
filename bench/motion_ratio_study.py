"""Which copy of the photo shows a short smear: the half-size one or the full working copy? (issue 12, rule M1)

    .venv/bin/python bench/motion_ratio_study.py --photos 150 [--length 12]

Fit-sample photos only (`gate_measure.fit_sample`: no selection, report or holdout photo is read), each as it is and
smeared `--length` px in twelve directions (`gate_data.motion_kernel`). For the motion ratio (least over most fine
detail, `measures.detail_spectrum`) on the half-size copy (`motion_ratio`) and on the full working copy
(`motion_ratio_full`), printed: the AUC of telling a smear from a good photo by the ratio alone (lower = smeared), and
the share of smears below the 1st and 5th percentiles of the good photos' ratio. On 2026-11-29, 150 photos: AUC 0.80
for the half-size ratio and 0.92 for the full-size one, which then joined the motion_blur model (docs/quality_gate.md,
"The smear read on the full working copy too").
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.gate_measure import fit_sample, load_rgb
from quality_gate.policy import Thresholds, image_measures

RATIOS = ("motion_ratio", "motion_ratio_full")


def auc_lower(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive reads lower than a negative), ties counted half: the AUC of "lower = positive"."""
    positive, negative = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float((positive < negative).mean() + 0.5 * (positive == negative).mean())


def share_below(values: np.ndarray, reference: np.ndarray, q: float) -> float:
    """Share of `values` below the q-quantile of `reference`."""
    return float((np.asarray(values) < np.quantile(reference, q)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--photos", type=int, default=150, help="fit-sample photos, a seeded draw")
    parser.add_argument("--length", type=int, default=12, help="px of smear")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    photos, _ = fit_sample()
    rng = np.random.default_rng(args.seed)
    chosen = [photos[i] for i in rng.choice(len(photos), min(args.photos, len(photos)), replace=False)]
    smears = [gd.smear(gd.motion_kernel(args.length, 15.0 * k)) for k in range(12)]
    t = Thresholds()
    good: list[dict[str, float]] = []
    smeared: list[dict[str, float]] = []
    for path in track(chosen, description=f"{len(chosen)} photos x 12 smears"):
        rgb = load_rgb(path)
        good.append(image_measures(rgb, t))
        smeared.extend(image_measures(smear(rgb), t) for smear in smears)
    print(f"{len(chosen)} fit-sample photos, {len(smeared)} smears of {args.length} px")
    for name in RATIOS:
        g, s = (np.array([values[name] for values in rows]) for rows in (good, smeared))
        print(
            f"  {name:18s} AUC {auc_lower(s, g):.3f}; good median {np.median(g):.3f}, smeared {np.median(s):.3f}; "
            f"smears below good's 1st / 5th percentile {100 * share_below(s, g, 0.01):.1f} / "
            f"{100 * share_below(s, g, 0.05):.1f}%"
        )


if __name__ == "__main__":
    main()
