"""Detection and grading metrics in plain numpy, independent of Ultralytics.

The serving path (ONNX, tiling, flip TTA) is what users get, so it is judged by our own code rather
than by the trainer's validator. AP follows COCO: greedy matching by descending score, each ground
truth matched at most once, 101-point interpolated precision envelope. It equals COCOeval's bbox AP (area
"all", no crowd boxes) once COCO's per-image cap `maxDets` (default 100) is raised to the model card's
`max_det`, the cap the serving path already applies; tests/unit/test_metrics.py checks this with pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, 10)
RECALL_POINTS: np.ndarray = np.linspace(0.0, 1.0, 101)
SMALL_AREA = 32.0**2


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of boxes given as x1, y1, x2, y2; degenerate boxes have zero area.

    The one IoU of the project: NMS, test-time fusion, scoring and reviewer agreement all use it."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0.0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_detections(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    gt_boxes: np.ndarray,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching in one image.

    Returns `tp` (n_pred, n_thr) for predictions in the given order and `gt_hit` (n_gt, n_thr): whether
    each ground truth was found. Higher-scored predictions pick first, each takes the unmatched ground
    truth it overlaps most.
    """
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    n_pred, n_gt, n_thr = len(pred_boxes), len(gt_boxes), len(thresholds)
    tp = np.zeros((n_pred, n_thr), dtype=bool)
    gt_hit = np.zeros((n_gt, n_thr), dtype=bool)
    if n_pred == 0 or n_gt == 0:
        return tp, gt_hit
    iou = box_iou(pred_boxes, gt_boxes)
    order = np.argsort(-np.asarray(pred_scores, dtype=np.float64), kind="stable")
    for p in order:
        # Candidates per threshold: (n_thr, n_gt) IoU where still unmatched and above the threshold.
        cand = np.where(~gt_hit.T & (iou[p][None, :] >= thresholds[:, None]), iou[p][None, :], -1.0)
        best = cand.argmax(axis=1)
        found = cand[np.arange(n_thr), best] >= 0.0
        tp[p, found] = True
        gt_hit[best[found], np.nonzero(found)[0]] = True
    return tp, gt_hit


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> np.ndarray:
    """101-point interpolated AP per IoU threshold from pooled `tp` (n_pred, n_thr) and scores.

    With no ground truth the AP is undefined and NaN is returned, so that callers can skip the class.
    """
    tp = np.asarray(tp, dtype=bool)
    if tp.ndim == 1:
        tp = tp[:, None]
    n_thr = tp.shape[1]
    if n_gt == 0:
        return np.full(n_thr, np.nan)
    if len(tp) == 0:
        return np.zeros(n_thr)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = tp[order]
    ctp = np.cumsum(tp, axis=0)
    cfp = np.cumsum(~tp, axis=0)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1)
    # Precision envelope: the best precision at any recall at least this high.
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    ap = np.zeros(n_thr)
    for t in range(n_thr):
        idx = np.searchsorted(recall[:, t], RECALL_POINTS, side="left")
        sampled = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1), t], 0.0)
        ap[t] = sampled.mean()
    return ap


def precision_recall_curve(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw precision and recall (at one IoU threshold) as the score threshold is lowered."""
    tp = np.asarray(tp, dtype=bool).reshape(-1)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ctp = np.cumsum(tp[order])
    precision = ctp / np.arange(1, len(ctp) + 1)
    recall = ctp / max(n_gt, 1)
    return precision, recall


@dataclass
class _ClassPool:
    tp: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    n_gt: int = 0

    def add(self, tp: np.ndarray, scores: np.ndarray, n_gt: int) -> None:
        self.tp.append(tp)
        self.scores.append(np.asarray(scores, dtype=np.float64).reshape(-1))
        self.n_gt += n_gt

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.tp:
            return np.zeros((0, len(IOU_THRESHOLDS)), dtype=bool), np.zeros(0)
        return np.concatenate(self.tp), np.concatenate(self.scores)


@dataclass
class DetectionAccumulator:
    """Pools per-image matches so mAP is computed over the whole split, class-agnostic and per class.

    `small_area` is measured at the photo's own scale; small-lesion recall counts ground truths found
    at IoU 0.5 by predictions at or above `recall_conf`.
    """

    class_names: Sequence[str]
    recall_conf: float = 0.25
    small_area: float = SMALL_AREA
    _agnostic: _ClassPool = field(default_factory=_ClassPool)
    _per_class: dict[int, _ClassPool] = field(default_factory=dict)
    _small_total: int = 0
    _small_found: int = 0

    def add(
        self,
        pred_boxes: np.ndarray,
        pred_scores: np.ndarray,
        pred_labels: np.ndarray,
        gt_boxes: np.ndarray,
        gt_labels: np.ndarray,
    ) -> None:
        pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
        pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        pred_labels = np.asarray(pred_labels, dtype=np.int64).reshape(-1)
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)

        tp, _ = match_detections(pred_boxes, pred_scores, gt_boxes)
        self._agnostic.add(tp, pred_scores, len(gt_boxes))

        keep = pred_scores >= self.recall_conf
        _, hit = match_detections(pred_boxes[keep], pred_scores[keep], gt_boxes, np.array([0.5]))
        areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
        small = areas < self.small_area
        self._small_total += int(small.sum())
        self._small_found += int(hit[small, 0].sum())

        if len(self.class_names) > 1:
            for c in np.union1d(pred_labels, gt_labels):
                p, g = pred_labels == c, gt_labels == c
                tp_c, _ = match_detections(pred_boxes[p], pred_scores[p], gt_boxes[g])
                self._per_class.setdefault(int(c), _ClassPool()).add(tp_c, pred_scores[p], int(g.sum()))

    def agnostic_pool(self) -> tuple[np.ndarray, np.ndarray, int]:
        tp, scores = self._agnostic.arrays()
        return tp, scores, self._agnostic.n_gt

    def summary(self) -> dict[str, object]:
        tp, scores, n_gt = self.agnostic_pool()
        ap = average_precision(tp, scores, n_gt)
        out: dict[str, object] = {
            "mAP50": float(ap[0]),
            "mAP50_95": float(np.mean(ap)),
            "n_gt": n_gt,
            "n_pred": len(scores),
            "small_gt": self._small_total,
            "small_recall": self._small_found / self._small_total if self._small_total else float("nan"),
        }
        if len(self.class_names) > 1:
            per_class: dict[str, dict[str, float]] = {}
            for c, pool in sorted(self._per_class.items()):
                tp_c, scores_c = pool.arrays()
                ap_c = average_precision(tp_c, scores_c, pool.n_gt)
                if np.isnan(ap_c[0]):
                    continue
                name = self.class_names[c] if 0 <= c < len(self.class_names) else str(c)
                per_class[name] = {"mAP50": float(ap_c[0]), "mAP50_95": float(np.mean(ap_c)), "n_gt": pool.n_gt}
            out["per_class"] = per_class
        return out


def grade_confusion(true: Sequence[int], pred: Sequence[int], n_grades: int = 4) -> np.ndarray:
    """Confusion matrix, rows = true grade, columns = predicted grade."""
    matrix = np.zeros((n_grades, n_grades), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return matrix


def count_mae(predicted: Sequence[int], labelled: Sequence[int]) -> float:
    """Mean absolute difference between counted and labelled lesions per photo."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(labelled, dtype=np.float64)
    return float(np.abs(p - t).mean()) if len(p) else float("nan")
