"""Is the shipped grader's ECE on the report part distinguishable from a calibrated grader's? (issue 11)

    nice .venv/bin/python bench/collect_evidence.py --split valid --out var/grader/evidence-valid-emb.npz
    .venv/bin/python bench/grader_calibration_floor.py --evidence var/grader/evidence-valid-emb.npz

Replays the model folder's own grader (as served) over the cached serving calls and prints, per part of `valid`,
grade accuracy, ECE (10 bins), and the ECE that a perfectly calibrated grader with the same probabilities would
show on as many photos (`detector.grader.calibrated_ece`, consistency resampling): its mean and 95th percentile.
The grader was fitted on the selection part, so only the report part's figures are out of sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from detector.grader import Grader, calibrated_ece, expected_calibration_error
from detector.grader_fit import feature_matrix, load_records, reliability_plot, split_records
from detector.model_card import ModelCard

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--evidence", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=REPO / "detector" / "weights")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--plot", type=Path, help="folder for reliability_<part>.png with consistency bars")
    args = parser.parse_args()
    card = ModelCard.load(args.model / "model.json")
    if not card.grader:
        raise SystemExit(f"{args.model} has no grader")
    grader = Grader.load(args.model / card.grader)
    records, _ = load_records(args.evidence)
    for part, chosen in split_records(records).items():
        probs = grader.predict_proba(feature_matrix(grader, chosen, grader.operating_conf))
        y = np.array([r.grade for r in chosen], np.int64)
        floor_mean, floor_p95 = calibrated_ece(probs, draws=args.draws)
        protocol = "out of sample" if part == "report" else "in sample (the grader was fitted here)"
        print(
            f"{part:9s} n={len(y):3d} accuracy {float((probs.argmax(axis=1) == y).mean()):.1%}  "
            f"ECE {expected_calibration_error(probs, y):.3f}  a calibrated grader: mean {floor_mean:.3f}, "
            f"95th percentile {floor_p95:.3f}  [{protocol}]"
        )
        if args.plot:
            title = f"{part} part ({protocol}): ECE {expected_calibration_error(probs, y):.3f}, n={len(y)}"
            print(f"  -> {reliability_plot(probs, y, args.plot / f'reliability_{part}.png', title)}")


if __name__ == "__main__":
    main()
