"""Operating threshold and count bands chosen on the selection part only, judged on the report part.

Reads the raw passes that `bench/detector_dump_passes.py` cached (normal + mirrored, at conf 0.001), cuts
both at each candidate threshold, fuses them as the served card does (flip TTA), counts, fits the best
bands on the selection part and keeps the threshold with the best selection accuracy. No network run.

    .venv/bin/python bench/detector_dump_passes.py --data /work/shared/datasets/acne04/valid \
        --model detector/weights --threads 1 --out var/grader/passes-valid.npz
    .venv/bin/python bench/grader_threshold_study.py --passes var/grader/passes-valid.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from detector import calibration
from detector.datasets.splits import split_names
from detector.evaluation import grade_from_name
from detector.model_card import ModelCard
from detector.nms import fuse_passes

LABELS = Path("/work/shared/datasets/acne04/valid/labels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    card = ModelCard.load(args.model)
    data = np.load(args.passes)
    stems = sorted({k.split("|")[0] for k in data.files})
    names = [f"{s}.jpg" for s in stems]
    grades = np.array([grade_from_name(n) for n in names])
    labelled = np.array(
        [sum(1 for ln in (args.labels / f"{s}.txt").read_text().splitlines() if ln.strip()) for s in stems]
    )
    parts = split_names(names)
    index = {n: i for i, n in enumerate(names)}
    sel = np.array([index[n] for n in parts["selection"]])
    rep = np.array([index[n] for n in parts["report"]])
    thresholds = [0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25]
    rows = []
    for t in thresholds:
        counts = []
        for s in stems:
            n, f = data[f"{s}|n"], data[f"{s}|f"]
            n, f = n[n[:, 4] >= t], f[f[:, 4] >= t]
            if card.tta_flip:
                _, scores, _ = fuse_passes([(n[:, :4], n[:, 4]), (f[:, :4], f[:, 4])], card.iou, card.max_det)
                counts.append(int(np.count_nonzero(scores >= t)))
            else:
                counts.append(len(n))
        counts = np.asarray(counts)
        cal = calibration.calibrate_counts({t: counts[sel]}, labelled[sel], grades[sel])
        rep_acc = float((calibration.grades_from_counts(counts[rep], cal.grade_bands) == grades[rep]).mean())
        rep_mae = float(np.abs(counts[rep] - labelled[rep]).mean())
        rows.append((t, cal.grade_bands, cal.grade_accuracy, cal.count_mae, rep_acc, rep_mae))
        print(
            f"t={t:.2f} bands={list(cal.grade_bands)} selection acc={cal.grade_accuracy:.3f} mae={cal.count_mae:.2f}"
            f" | report acc={rep_acc:.3f} mae={rep_mae:.2f}",
            flush=True,
        )
    best = max(rows, key=lambda r: (r[2], -r[3]))
    print(
        f"chosen on selection: t={best[0]} bands={list(best[1])} (selection acc {best[2]:.3f});"
        f" report acc {best[4]:.3f}, report count MAE {best[5]:.2f}; photos selection={len(sel)} report={len(rep)}"
    )


if __name__ == "__main__":
    main()
