"""Which not_skin_photo model, by cross-validation over real non-skin photos grouped by source image (issue 12).

    .venv/bin/python bench/real_nonskin_cv.py --measures var/gate/m2-train.json var/gate/m2-valid.json \\
        var/gate/m2-real.json var/gate/m2-nonskin.json

The real development photos (`bench/real_images.py`) are too few to split once, so each variant is fitted once
per source image with that image's views left out and judged on them (leave one source out), with every other
code as shipped. The decision threshold is chosen as the shipped one is, on the good photos and copies of the
*selection* part of `valid` (`--budgets`). Printed per variant: the held-out real photos refused (any code), the
good selection rows refused (any code), and the generated non-skin images and background crops of the selection
part refused; and, fitted five times with a fifth of the train photos left out each time (grouped by photo), the
good rows of the left-out photos refused, by acne grade (severe acne must not read as "not skin"). Neither the
report part, nor the holdout, nor the real photos of the `report` role are read here.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.fit_quality_gate import FOLDS, code_threshold, fit_code, fold, is_good
from quality_gate import ood, verdict
from quality_gate.policy import Thresholds, judge

SHIPPED = verdict.MODEL_FEATURES["not_skin_photo"]
DIRECTION = ["fine_coherence", "oriented_detail"]  # strokes (fur, hair, grain) are oriented; pores and lesions are not
DETAIL = ["log_detail_half_max", "log_sharpness"]
BEFORE = [name for name in SHIPPED if name not in DIRECTION + DETAIL]  # the distance and the colour statistics
FRAME_COLOUR = [
    "frame_lightness",
    "frame_lightness_spread",
    "frame_red_green",
    "frame_yellow_blue",
    "frame_chroma_spread",
]
TEXTURE = ["skin_chroma_spread", "log_detail_half_max", "log_sharpness", "colour_detail", "fine_coherence"]
TEXTURE += ["oriented_detail", "motion_ratio", "log_noise", "skin_exposure", "frame_gradient"]
HIGHLIGHTS = ["skin_highlight", "frame_highlight", "clipped_fraction", "light_spread", "uniformity"]
VARIANTS = [  # (label, inputs); issue 12's note gives the figures and the rule that chose the shipped one
    ("distance + colour (before)", BEFORE),
    ("+ direction", BEFORE + DIRECTION),
    ("+ direction, detail (shipped)", SHIPPED),
    ("+ direction, detail, colour detail", BEFORE + DIRECTION + DETAIL + ["colour_detail"]),
    ("+ direction, detail, noise, ratio", BEFORE + DIRECTION + DETAIL + ["log_noise", "motion_ratio"]),
    ("+ frame colour", BEFORE + FRAME_COLOUR),
    ("+ frame colour, direction", BEFORE + FRAME_COLOUR + DIRECTION),
    ("+ frame colour, texture", BEFORE + FRAME_COLOUR + TEXTURE),
    ("+ frame colour, texture, highlights", BEFORE + FRAME_COLOUR + TEXTURE + HIGHLIGHTS),
]


def skin_of(rows: list[dict], k: int) -> list[dict]:
    """The good train rows (as is, tone, JPEG/noise copies) of fold `k`."""
    return [r for r in rows if fold(r) == k and is_good(r)]


def refused(rows: list[dict], models: dict, t: Thresholds) -> np.ndarray:
    return np.array([not judge(r["measures"], t, models).accepted for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measures", type=Path, nargs="+", required=True)
    parser.add_argument("--budgets", default="0.003", help="shares of good selection rows to refuse")
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--variant", default="", help="only the variants whose label contains this, e.g. shipped")
    args = parser.parse_args()
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    for row in rows:
        row["measures"]["ood_distance"] = ood.ood_distance(row["measures"])
    fit_rows = [r for r in rows if r["set"] == "train"]
    real = [r for r in rows if r["set"] == "real" and r["part"] == "development"]
    good = [r for r in rows if r["set"] == "valid" and r["part"] == "selection" and is_good(r)]
    generated = [r for r in rows if r["set"] == "nonskin" and r["part"] == "selection"]
    sources = sorted({r["photo"] for r in real})
    # the other codes as shipped, without the content network: it was trained on every development photo, so a
    # source left out here would not be out of its sight
    shipped, t = json.loads(verdict.MODEL_PATH.read_text()), Thresholds(max_content_logit=math.inf)

    def gate(train: list[dict], names: list[str], share: float) -> dict:
        model = fit_code(train, "not_skin_photo", names, args.l2)
        model["threshold"] = code_threshold(good, model, share)
        models = copy.deepcopy(shipped)
        models["codes"]["not_skin_photo"] = model
        return models

    print(
        f"shipped gate: real development photos refused {refused(real, shipped, t).mean():.1%} (fitted on them, if its fit read them)"
    )
    for label, names in (v for v in VARIANTS if args.variant in v[0]):
        for share in (float(b) for b in args.budgets.split(",")):
            held = {}
            for source in track(sources, description=f"{label}, {share:.1%}", transient=True):
                models = gate(fit_rows + [r for r in real if r["photo"] != source], names, share)
                held[source] = refused([r for r in real if r["photo"] == source], models, t)
            models = gate(fit_rows + real, names, share)
            weak = ", ".join(f"{s} {v.mean():.0%}" for s, v in held.items() if v.mean() < 0.95)
            by_fold = [
                refused(skin_of(fit_rows, k), gate([r for r in fit_rows if fold(r) != k] + real, names, share), t)
                for k in range(FOLDS)
            ]
            skin_rows = [r for k in range(FOLDS) for r in skin_of(fit_rows, k)]
            skin_refused = np.concatenate(by_fold)
            grades = np.array([gd.grade_of(r["photo"]) for r in skin_rows])
            per_grade = " ".join(f"{g} {skin_refused[grades == g].mean():.1%}" for g in sorted(set(grades)))
            print(
                f"{label:38s} budget {share:.1%}: real photos held out {np.concatenate(list(held.values())).mean():.1%}"
                f" | good selection refused {refused(good, models, t).mean():.2%}"
                f" | generated + crops {refused(generated, models, t).mean():.1%}"
                f" | train photos held out, refused by grade: {per_grade} | under 95%: {weak}",
                flush=True,
            )


if __name__ == "__main__":
    main()
