"""Which inputs for an exposure model (too_dark, too_bright), by folds of the fit sample (issue 12, skin tone).

    .venv/bin/python bench/exposure_inputs_cv.py --code too_dark --measures var/gate/m2-train.json \\
        var/gate/m2-valid.json --candidates light_q80 light_q95 skin_exposure

A tone shift darkens or lightens the skin only (`gate_data.tone_shift` keeps its specular highlights); an exposure
fault changes the whole frame. The shipped model and the shipped inputs plus each candidate are fitted five times
with a fifth of the fit-sample photos left out (grouped by photo, `real_nonskin_cv.fold`), each with its threshold
chosen as shipped on the *selection* part of `valid` (`--budget` of its good rows and copies refused by this code).
Printed per variant, on the left-out photos: the good rows and copies refused by this code, the hardest tone shift
refused, and the exposure faults caught (at least 2 stops; 1.5-2 stops); and, fitted on all of the fit sample, on
selection: the 2-stop copies caught, the good rows refused and the hardest tone shift refused. Neither the report
part of `valid` nor the holdout is read.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from bench.fit_quality_gate import FOLDS, code_threshold, fit_code, fold, is_good
from quality_gate import verdict

CODES = {  # code -> (sign of the fault in `exposure +/-N`, the hardest tone shift, the selection copy at 2 stops)
    "too_dark": ("-", "tone L-40 b+8", "darker 2 stops"),
    "too_bright": ("+", "tone L+8", "brighter 2 stops"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--code", choices=sorted(CODES), default="too_dark")
    parser.add_argument("--measures", type=Path, nargs="+", required=True)
    parser.add_argument("--candidates", nargs="+", default=["light_q80", "light_q95", "skin_exposure"])
    parser.add_argument("--budget", type=float, default=0.003)
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args()
    sign, tone_kind, selection_kind = CODES[args.code]
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    train = [r for r in rows if r["set"] == "train"]
    selection = [r for r in rows if r["set"] == "valid" and r["part"] == "selection"]
    good_selection = [r for r in selection if is_good(r)]

    def strength(row: dict) -> float | None:
        match = re.fullmatch(rf"exposure \{sign}([0-9.]+)", row["kind"])
        return float(match.group(1)) if match else None

    def fitted(fit_rows: list[dict], names: list[str]) -> dict:
        model = fit_code(fit_rows, args.code, names, args.l2)
        model["threshold"] = code_threshold(good_selection, model, args.budget)
        return model

    def refused(row: dict, model: dict) -> bool:
        return verdict.logit(row["measures"], model) > model["threshold"]

    def share(hits: list[bool]) -> str:
        return f"{np.mean(hits):.1%}" if hits else "-"

    shipped = verdict.MODEL_FEATURES[args.code]
    variants = [("shipped", shipped)] + [(f"+ {name}", [*shipped, name]) for name in args.candidates]
    for label, names in variants:
        held: list[tuple[dict, bool]] = []
        for k in range(FOLDS):
            model = fitted([r for r in train if fold(r) != k], names)
            held += [(r, refused(r, model)) for r in train if fold(r) == k]
        model = fitted(train, names)
        faults = [(strength(r), hit) for r, hit in held if strength(r) is not None]
        print(
            f"{label:22s} folds: good refused {share([hit for r, hit in held if is_good(r)])}, "
            f"{tone_kind} {share([hit for r, hit in held if r['kind'] == tone_kind])}, "
            f"faults >= 2 stops caught {share([hit for s, hit in faults if s >= 2.0])} "
            f"(1.5-2: {share([hit for s, hit in faults if 1.5 <= s < 2.0])}) | selection: "
            f"{selection_kind} {share([refused(r, model) for r in selection if r['kind'] == selection_kind])}, "
            f"good refused {share([refused(r, model) for r in good_selection])}, "
            f"{tone_kind} {share([refused(r, model) for r in selection if r['kind'] == tone_kind])}",
            flush=True,
        )


if __name__ == "__main__":
    main()
