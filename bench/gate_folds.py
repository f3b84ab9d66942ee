"""Whom the whole gate refuses among photos its fit did not read, by folds of the fit sample (issue 12).

    .venv/bin/python bench/gate_folds.py --measures var/gate/m2-train.json var/gate/m2-valid.json \\
        var/gate/m2-real.json [--inputs too_dark=skin_highlight,frame_highlight,light_q80] [--code-budget too_dark=0.001]

The fit-sample train photos are split in 5 folds grouped by photo (`real_nonskin_cv.fold`). For each fold, the out-of-
distribution statistics and every code's model are fitted as shipped without it (`fit_quality_gate.fit_ood`,
`fit_verdict`), the thresholds are chosen as shipped on the *selection* part of `valid` (`--budget`, `--code-budget`),
and the fold's rows are judged. Printed: the share of its good rows and copies (as is, JPEG/noise, tone shifts)
refused, by code, by kind and by acne grade; and the share of its faulty copies caught, by fault (the fit's labels:
past each code's fault line, random strengths). Five times more good photos than selection, and of the train distribution the holdout
comes from, so a protocol on which to choose; neither the report part nor the holdout is read. `--inputs` replaces a
code's inputs (`verdict.MODEL_FEATURES`) for a variant. The lighting and blur CNNs are left out (`max_lighting_logit`,
`max_blur_logit` = inf): they were trained on these very photos, so their view of them says nothing;
`bench/lighting_cnn.py cv` gives the lighting network's folds.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import math
from pathlib import Path

import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.calibrate_quality_gate import caught
from bench.fit_quality_gate import FOLDS, choose_thresholds, fit_ood, fit_verdict, fold, is_good, threshold_pool
from quality_gate import ood, verdict
from quality_gate.policy import Thresholds, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measures", type=Path, nargs="+", required=True)
    parser.add_argument("--inputs", action="append", default=[], metavar="CODE=A,B,C")
    parser.add_argument("--budget", type=float, default=0.003)
    parser.add_argument("--code-budget", action="append", default=[], metavar="CODE=SHARE")
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args()
    for item in args.inputs:
        code, names = item.split("=", 1)
        verdict.MODEL_FEATURES[code] = names.split(",")
    budgets = {code: float(share) for code, share in (item.split("=", 1) for item in args.code_budget)}
    rows = [r for path in args.measures for r in json.loads(path.read_text()) if r["set"] in ("train", "valid", "real")]
    t = Thresholds(max_lighting_logit=math.inf, max_blur_logit=math.inf)  # trained on the fit sample: see the docstring
    judged: list[tuple[dict, list[str]]] = []
    faults: dict[str, list[bool]] = collections.defaultdict(list)
    for k in track(range(FOLDS), description="folds"):
        fit_rows = copy.deepcopy([r for r in rows if not (r["set"] == "train" and fold(r) == k)])
        held = copy.deepcopy([r for r in rows if r["set"] == "train" and fold(r) == k])
        stats = fit_ood(fit_rows)
        for row in fit_rows + held:
            row["measures"]["ood_distance"] = ood.ood_distance(row["measures"], stats)
        models = fit_verdict(fit_rows, args.l2)
        choose_thresholds(threshold_pool(fit_rows, models, stats), models, stats, args.budget, args.budget, budgets)
        for row in held:
            report = judge(row["measures"], t, models, stats)
            if is_good(row):
                judged.append((row, report.retake_codes))
            elif row["label"] == "not_skin_photo":  # any code: a non-skin image refused as no_skin is refused too
                faults["non-skin (any code)"].append(not report.accepted)
            elif row["label"] not in ("ignore", "closeup"):
                faults[row["label"]].append(caught(row, report))
    refused = [(row, codes) for row, codes in judged if codes]
    as_is = [codes for row, codes in judged if row["kind"] == "good"]
    print(f"good rows and copies of the left-out photos: {len(judged)}, refused {len(refused) / len(judged):.2%}")
    print(f"  as they are: {len(as_is)}, refused {np.mean([bool(codes) for codes in as_is]):.2%}")
    print("  by code:", dict(collections.Counter(code for _, codes in refused for code in codes).most_common()))
    print("  by kind:", dict(collections.Counter(row["kind"] for row, _ in refused).most_common(8)))
    captured = collections.defaultdict(list)  # `gate_measure.py --sets extra-capture` rows, by change
    for row, codes in judged:
        if row["kind"].startswith("capture "):
            change = " ".join(w for w in row["kind"].split()[1:] if not w[-1].isdigit())
            if change == "white balance":
                change += " (warm)" if "+" in row["kind"] else " (cool)"
            captured[change].append(codes)
    for change, codes in sorted(captured.items()):
        by_code = collections.Counter(code for c in codes for code in c)
        print(f"  capture {change}: {len(codes)}, refused {np.mean([bool(c) for c in codes]):.1%} {dict(by_code)}")
    grades = collections.defaultdict(list)
    for row, codes in judged:
        grades[gd.grade_of(row["photo"])].append(bool(codes))
    print("  by acne grade:", ", ".join(f"{g} {np.mean(v):.2%}" for g, v in sorted(grades.items())))
    print("faults of the left-out photos caught (past each code's fault line):")
    print("  " + ", ".join(f"{label} {np.mean(hits):.1%} of {len(hits)}" for label, hits in sorted(faults.items())))


if __name__ == "__main__":
    main()
