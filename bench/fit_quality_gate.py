"""Fit the quality gate's learned verdict and out-of-distribution statistics; write the shipped files.

    nice -n 10 .venv/bin/python bench/gate_measure.py --out var/gate/measures.json    # measures, ~10 min
    .venv/bin/python bench/fit_quality_gate.py --measures var/gate/measures.json      # -> quality_gate/*.json

Protocol (what each choice sees):
- `quality_gate/ood_stats.json`: mean and covariance fitted on ACNE04 `train` rows only (photos, tone shifts,
  JPEG copies, skin close-up crops and their focus/motion/lighting degradations; not the exposure faults,
  which the exposure codes own).
- `quality_gate/verdict.json`: one logistic regression per code fitted on `train` rows: the code's
  degradations (strong enough) against good photos and their tone shifts and JPEG copies; the in-between
  strengths are left out of the fit. The not_skin_photo model: the generated non-skin images of the fit
  families (seeds 0..24) and background crops of train photos against skin rows (good, close-ups, blurred,
  side-lit), over the distance to `ood_stats.json` and the colour statistics.
- Decision thresholds (each model's logit, the distance limit) are chosen on the *selection* part of `valid`
  only: the lowest threshold under which at most `--budget` of the good selection photos (as is, JPEG, five
  skin-tone shifts) would be refused by that code. The *report* part and the held-back non-skin images are
  not read here; `bench/calibrate_quality_gate.py` reports on them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from quality_gate import ood, verdict

GOOD_KINDS_PREFIXES = ("good", "tone ", "noise+JPEG")
EXPOSURE_LABELS = ("too_dark", "too_bright")


def is_good(row: dict) -> bool:
    return row["label"] is None


def training_rows(rows: list[dict], code: str) -> tuple[list[dict], np.ndarray]:
    """Rows and 0/1 targets for one code's model (train set only)."""
    positives = {"blurry": ("blurry", "motion_blur")}.get(code, (code,))
    negatives_extra = {
        "motion_blur": ("blurry",),
        "uneven_lighting": ("closeup",),
        "not_skin_photo": ("closeup", "blurry", "motion_blur", "uneven_lighting"),
    }.get(code, ())
    chosen, target = [], []
    for row in rows:
        if row["set"] != "train":
            continue
        if row["label"] in positives:
            chosen.append(row)
            target.append(1.0)
        elif is_good(row) or row["label"] in negatives_extra:
            chosen.append(row)
            target.append(0.0)
    return chosen, np.array(target)


def fit_verdict(rows: list[dict], l2: float) -> dict:
    models = {}
    for code, names in verdict.MODEL_FEATURES.items():
        chosen, target = training_rows(rows, code)
        x = np.array([verdict.inputs(r["measures"], names) for r in chosen])
        mean, scale, coef, intercept = verdict.fit_logistic(x, target, l2=l2)
        models[code] = {
            "features": names,
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": coef.tolist(),
            "intercept": intercept,
            "threshold": 0.0,
            "fitted_rows": {"faulty": int(target.sum()), "fine": int(len(target) - target.sum())},
        }
    return {"codes": models}


def fit_ood(rows: list[dict]) -> dict:
    fit = [r for r in rows if r["set"] == "train" and r["label"] not in ("not_skin_photo", "ignore", *EXPOSURE_LABELS)]
    stats = ood.fit_stats(np.array([ood.feature_vector(r["measures"]) for r in fit]))
    stats["caps"] = ood.fit_caps([r["measures"] for r in fit])
    return stats


def choose_thresholds(rows: list[dict], models: dict, stats: dict, budget: float, ood_budget: float) -> None:
    """Per code, the lowest threshold refusing at most `budget` of the good valid-selection photos."""
    good = [r for r in rows if r["set"] == "valid" and r["part"] == "selection" and is_good(r)]
    for model in models["codes"].values():
        scores = np.array([verdict.logit(r["measures"], model) for r in good])
        model["threshold"] = float(max(np.quantile(scores, 1.0 - budget), -2.0))
        model["chosen_on"] = f"valid selection: {len(good)} good photos and tone/JPEG copies, <= {budget:.2%} refused"
    distances = np.array([ood.distance(ood.feature_vector(r["measures"]), stats) for r in good])
    stats["threshold"] = float(max(np.quantile(distances, 1.0 - ood_budget), stats["reference_distance"]))
    stats["chosen_on"] = f"valid selection: {len(good)} good photos and copies, <= {ood_budget:.2%} refused"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measures", type=Path, default=Path("var/gate/measures.json"))
    parser.add_argument("--budget", type=float, default=0.003, help="share of good selection photos per code")
    parser.add_argument("--ood-budget", type=float, default=0.003)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the shipped files")
    args = parser.parse_args()
    rows = json.loads(args.measures.read_text())
    stats = fit_ood(rows)
    for row in rows:  # the not_skin_photo model reads the distance to the fitted statistics
        row["measures"]["ood_distance"] = ood.ood_distance(row["measures"], stats)
    models = fit_verdict(rows, args.l2)
    choose_thresholds(rows, models, stats, args.budget, args.ood_budget)
    for code, model in models["codes"].items():
        coefs = ", ".join(f"{n} {c:+.2f}" for n, c in zip(model["features"], model["coef"], strict=True))
        print(f"{code:16s} threshold {model['threshold']:+.2f}  {model['fitted_rows']}  {coefs}")
    print(
        f"ood: fitted on {stats['n']} rows, reference {stats['reference_distance']:.2f}, "
        f"threshold {stats['threshold']:.2f}, caps {stats['caps']}"
    )
    if not args.dry_run:
        verdict.save_models(models)
        ood.save_stats(stats)
        print(f"wrote {verdict.MODEL_PATH} and {ood.STATS_PATH}")


if __name__ == "__main__":
    main()
