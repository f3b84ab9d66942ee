"""Compare serving levers offline on passes dumped by `bench/detector_dump_passes.py`.

For each dump: normal pass alone or fused with the mirrored pass (weighted fusion as served, or
plain NMS over both), at a few IoU thresholds; prints mAP50, mAP50-95, and the grade accuracy after
calibrating threshold + bands on the same split (and its 5-fold cross-validated value).

    .venv/bin/python bench/detector_levers.py --data /work/shared/datasets/acne04/valid \
        var/experiments/passes-u1.0.npz
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from detector.calibration import DEFAULT_THRESHOLDS, calibrate, calibrate_counts, cross_validated_accuracy
from detector.metrics import DetectionAccumulator
from detector.nms import fuse_passes, nms

GRADE_RE = re.compile(r"^levle(\d)_")


def load_truth(data: Path, stems: list[str]) -> tuple[list[np.ndarray], list[int]]:
    """Ground-truth boxes in pixels (640 px photos) and grades from the file prefix."""
    from PIL import Image

    boxes, grades = [], []
    for stem in stems:
        with Image.open(data / "images" / f"{stem}.jpg") as im:
            w, h = im.size
        rows = (
            np.loadtxt(data / "labels" / f"{stem}.txt", ndmin=2)
            if (data / "labels" / f"{stem}.txt").stat().st_size
            else np.zeros((0, 5))
        )
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
        match = GRADE_RE.match(stem)
        grades.append(int(match.group(1)) if match else -1)
    return boxes, grades


def variants(
    normal: np.ndarray, flipped: np.ndarray, ious: list[float], max_det: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """As served with card.iou = iou: per-pass NMS at iou, then normal only or fused with the mirror."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for iou in ious:
        n = normal[nms(normal[:, :4], normal[:, 4], iou, max_det)]
        f = flipped[nms(flipped[:, :4], flipped[:, 4], iou, max_det)]
        out[f"normal@{iou}"] = (n[:, :4], n[:, 4])
        boxes, scores, _ = fuse_passes([(n[:, :4], n[:, 4]), (f[:, :4], f[:, 4])], iou, max_det)
        out[f"flip@{iou}"] = (boxes, scores)
    return out


def served_flip_counts(
    passes: list[tuple[np.ndarray, np.ndarray]], iou: float, max_det: int, band_low: float = 0.2
) -> dict[float, np.ndarray]:
    """Counts as served with flip fusion: passes decoded at floor min(t, band_low), fused, cut at t."""
    out: dict[float, np.ndarray] = {}
    for t in DEFAULT_THRESHOLDS:
        floor = min(float(t), band_low)
        counts = []
        for normal, flipped in passes:
            n, f = normal[normal[:, 4] >= floor], flipped[flipped[:, 4] >= floor]
            n = n[nms(n[:, :4], n[:, 4], iou, max_det)]
            f = f[nms(f[:, :4], f[:, 4], iou, max_det)]
            _, scores, _ = fuse_passes([(n[:, :4], n[:, 4]), (f[:, :4], f[:, 4])], iou, max_det)
            counts.append(int(np.count_nonzero(scores >= t)))
        out[float(t)] = np.asarray(counts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ious", type=float, nargs="+", default=[0.7, 0.6, 0.5, 0.45, 0.4])
    parser.add_argument("--max-det", type=int, default=300)
    parser.add_argument("dumps", type=Path, nargs="+")
    args = parser.parse_args()
    for dump in args.dumps:
        record = np.load(dump)
        stems = sorted({k.split("|")[0] for k in record.files})
        gt, grades = load_truth(args.data, stems)
        per_variant: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for stem in stems:
            for name, pred in variants(record[f"{stem}|n"], record[f"{stem}|f"], args.ious, args.max_det).items():
                per_variant.setdefault(name, []).append(pred)
        print(f"== {dump.name} ({len(stems)} photos)")
        for name, preds in per_variant.items():
            acc = DetectionAccumulator(class_names=["lesion"])
            for (boxes, scores), truth in zip(preds, gt, strict=True):
                acc.add(boxes, scores, np.zeros(len(scores)), truth, np.zeros(len(truth)))
            s = acc.summary()
            scores_only = [p[1] for p in preds]
            labelled = [len(t) for t in gt]
            cal = calibrate(scores_only, labelled, grades)
            cv = cross_validated_accuracy(scores_only, labelled, grades)
            print(
                f"{name:12s} mAP50={s['mAP50']:.4f} mAP50-95={s['mAP50_95']:.4f} "
                f"grade_acc={cal.grade_accuracy:.3f} cv5={cv:.3f} conf={cal.operating_conf} "
                f"bands={list(cal.grade_bands)} count_mae={cal.count_mae:.2f}",
                flush=True,
            )
            if name.startswith("flip@"):
                iou = float(name.split("@")[1])
                passes = [(record[f"{stem}|n"], record[f"{stem}|f"]) for stem in stems]
                served = calibrate_counts(served_flip_counts(passes, iou, args.max_det), labelled, grades)
                print(
                    f"{'':12s} as served: grade_acc={served.grade_accuracy:.3f} conf={served.operating_conf} "
                    f"bands={list(served.grade_bands)} count_mae={served.count_mae:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
