"""Judge a model through the serving path on a labelled split.

Everything a user would get (ONNX, upscale/tiling, flip fusion, operating threshold, grade bands)
is what is measured: `Detector.predict(photo, conf=0.001)` per photo, then our own COCO-style mAP,
small-lesion recall, counting error and severity-grade accuracy against the `levleN_` file prefix.
Per-photo results are kept in `predictions.jsonl` so that calibration needs no second inference run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from detector.datasets.formats import read_yolo
from detector.datasets.snapshot import MANIFEST, load_snapshot, read_labels
from detector.findings import Detection
from detector.metrics import DetectionAccumulator, count_mae, grade_confusion, precision_recall_curve

EVAL_CONF = 0.001
GRADE_PREFIX = re.compile(r"^levle(\d)_", re.IGNORECASE)


class Predictor(Protocol):
    """What evaluation needs from a detector (the serving `Detector` is one)."""

    def predict(self, image: np.ndarray, conf: float | None = None) -> Detection: ...


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    boxes: np.ndarray  # (N, 4) xyxy pixels
    labels: np.ndarray  # (N,) class index in `class_names`
    grade: int | None


@dataclass
class EvaluationResult:
    summary: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    accumulator: DetectionAccumulator | None = None


def grade_from_name(name: str) -> int | None:
    """ACNE04 ground truth: file names start with `levleN_` (sic), N = grade 0-3."""
    match = GRADE_PREFIX.match(Path(name).name)
    return int(match.group(1)) if match else None


def load_labelled_images(data: Path, split: str | None) -> tuple[list[LabelledImage], list[str]]:
    """Images and boxes of a snapshot (`manifest.json`) or a YOLO folder, optionally one split.

    A YOLO folder without split folders is taken whole.
    """
    data = Path(data)
    items: list[LabelledImage] = []
    if (data / MANIFEST).is_file():
        snap = load_snapshot(data)
        for image in snap.images(split):  # type: ignore[arg-type]
            boxes = read_labels(snap, image)
            items.append(_labelled(image, boxes))
        return items, snap.class_names
    dataset = read_yolo(data)
    known = {s.split for s in dataset.samples}
    for sample in dataset.samples:
        if split is not None and known != {None} and sample.split != split:
            continue
        items.append(_labelled(Path(sample.image), sample.boxes))  # type: ignore[arg-type]
    return items, dataset.class_names


def _labelled(path: Path, boxes: Sequence[Any]) -> LabelledImage:
    arr = np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float64).reshape(-1, 4)
    labels = np.array([b.label for b in boxes], dtype=np.int64)
    return LabelledImage(path=path, boxes=arr, labels=labels, grade=grade_from_name(path.name))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def evaluate(
    predictor: Predictor,
    images: Sequence[LabelledImage],
    *,
    class_names: Sequence[str],
    operating_conf: float,
    progress: Callable[[int, int], None] | None = None,
    served_counts: bool = False,
) -> EvaluationResult:
    """Run `predictor` on every image and compute the summary; `class_names` are the model's.

    Count and grade come from the low-threshold call unless `served_counts`: then from a second
    call at the default threshold, exactly as served (needed where the answer depends on the
    requested threshold, as flip fusion's does).
    """
    accumulator = DetectionAccumulator(class_names=list(class_names), recall_conf=operating_conf)
    index = {name: i for i, name in enumerate(class_names)}
    records: list[dict[str, Any]] = []
    for i, item in enumerate(images):
        rgb = read_rgb(item.path)
        detection = predictor.predict(rgb, conf=EVAL_CONF)
        served = predictor.predict(rgb) if served_counts else detection
        boxes = np.array([f.box for f in detection.findings], dtype=np.float64).reshape(-1, 4)
        scores = np.array([f.confidence for f in detection.findings], dtype=np.float64)
        labels = np.array([index.get(f.label, -1) for f in detection.findings], dtype=np.int64)
        gt_labels = item.labels if len(class_names) > 1 else np.zeros(len(item.labels), dtype=np.int64)
        accumulator.add(boxes, scores, labels, item.boxes, gt_labels)
        records.append(
            {
                "image": item.path.name,
                "grade": item.grade,
                "labelled": len(item.boxes),
                "count": served.lesion_count,
                "predicted_grade": served.severity.grade,
                "uncertainty": round(float(served.uncertainty), 4),
                "scores": [round(float(s), 4) for s in scores],
            }
        )
        if served.severity.probabilities is not None:
            records[-1]["probabilities"] = list(served.severity.probabilities)
        if progress:
            progress(i + 1, len(images))
    summary = summarise(accumulator, records, operating_conf)
    return EvaluationResult(summary=summary, records=records, accumulator=accumulator)


def summarise(
    accumulator: DetectionAccumulator, records: Sequence[dict[str, Any]], operating_conf: float
) -> dict[str, Any]:
    summary: dict[str, Any] = {"images": len(records), "operating_conf": operating_conf}
    summary.update(accumulator.summary())
    summary["count_mae"] = count_mae([r["count"] for r in records], [r["labelled"] for r in records])
    graded = [r for r in records if r["grade"] is not None]
    if graded:
        true = [r["grade"] for r in graded]
        pred = [r["predicted_grade"] for r in graded]
        summary["graded_images"] = len(graded)
        summary["grade_accuracy"] = float(np.mean(np.asarray(true) == np.asarray(pred)))
        summary["grade_confusion"] = grade_confusion(true, pred).tolist()
        if all("probabilities" in r for r in graded):
            from detector.grader import expected_calibration_error

            probs = np.asarray([r["probabilities"] for r in graded], dtype=np.float64)
            summary["grade_ece"] = expected_calibration_error(probs, np.asarray(true))
    return summary


def write_report(result: EvaluationResult, accumulator_pr: tuple[np.ndarray, np.ndarray] | None, out: Path) -> None:
    """summary.json, predictions.jsonl and the two plots."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for record in result.records:
            handle.write(json.dumps(record) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if accumulator_pr is not None:
        precision, recall = accumulator_pr
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision, color="#4477aa")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.set_title(f"class-agnostic PR @IoU0.5, AP50={result.summary['mAP50']:.3f}")
        fig.tight_layout()
        fig.savefig(out / "pr_curve.png", dpi=100)
        plt.close(fig)
    if "grade_confusion" in result.summary:
        matrix = np.asarray(result.summary["grade_confusion"])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(matrix, cmap="Blues")
        for (r, c), v in np.ndenumerate(matrix):
            ax.text(c, r, str(v), ha="center", va="center", color="black")
        ax.set(xlabel="predicted grade", ylabel="true grade", xticks=range(4), yticks=range(4))
        ax.set_title(f"grade accuracy {result.summary['grade_accuracy']:.1%}")
        fig.tight_layout()
        fig.savefig(out / "confusion_matrix.png", dpi=100)
        plt.close(fig)
    graded = [r for r in result.records if r["grade"] is not None and "probabilities" in r]
    if graded and "grade_ece" in result.summary:
        from detector.grader_fit import reliability_plot

        reliability_plot(
            np.asarray([r["probabilities"] for r in graded]),
            np.asarray([r["grade"] for r in graded]),
            out / "reliability.png",
            f"grade probabilities, ECE {result.summary['grade_ece']:.3f}, n={len(graded)} (whole split)",
        )


def evaluate_and_report(
    predictor: Predictor,
    images: Sequence[LabelledImage],
    *,
    class_names: Sequence[str],
    operating_conf: float,
    out: Path | None,
    progress: Callable[[int, int], None] | None = None,
    served_counts: bool = False,
) -> EvaluationResult:
    """`evaluate`, then write the report folder when `out` is given."""
    result = evaluate(
        predictor,
        images,
        class_names=class_names,
        operating_conf=operating_conf,
        progress=progress,
        served_counts=served_counts,
    )
    if out is not None:
        pr = None
        if result.accumulator is not None:
            tp, scores, n_gt = result.accumulator.agnostic_pool()
            pr = precision_recall_curve(tp[:, 0], scores, n_gt)
        write_report(result, pr, out)
    return result
