"""Box overlap, class-agnostic non-maximum suppression and flip-pass fusion, in numpy.

Own implementation so the serving path needs neither torch nor torchvision. Every lesion class is
one "lesion", so suppression is class-agnostic.
"""

from __future__ import annotations

import numpy as np

from detector.metrics import box_iou

MAX_NMS_CANDIDATES = 30000  # as Ultralytics: bounds the work at very low confidence (mAP runs)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int = 300) -> np.ndarray:
    """Indices of kept boxes, best first: greedy, each step suppresses all boxes overlapping the best.

    Kept boxes pairwise have IoU <= `iou_threshold`. Each step is one vectorised IoU row, and the
    loop stops at `max_det` keeps, so cost is O(max_det * N).
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError("boxes and scores differ in length")
    order = np.argsort(-scores, kind="stable")[:MAX_NMS_CANDIDATES]
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        overlap = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def fuse_passes(
    passes: list[tuple[np.ndarray, np.ndarray]], iou_threshold: float, max_det: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted box fusion of several passes over the same photo (e.g. normal + flipped).

    Clusters are formed around NMS keeps; a cluster's box is the confidence-weighted mean of its
    members and its confidence the mean over passes of each pass's best member (0 where a pass
    saw nothing), so a lesion seen by one pass only is down-weighted instead of counted.
    Returns fused boxes, scores and, per fused box, the index (into the passes concatenated in
    order) of its highest-scoring member, so callers can carry labels over.
    """
    empty = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    if not passes:
        return empty
    boxes = np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b, _ in passes])
    scores = np.concatenate([np.asarray(s, np.float32).reshape(-1) for _, s in passes])
    source = np.concatenate([np.full(len(s), i) for i, (_, s) in enumerate(passes)])
    if not boxes.shape[0]:
        return empty
    order = np.argsort(-scores, kind="stable")
    free = np.ones(len(scores), dtype=bool)
    fused_boxes: list[np.ndarray] = []
    fused_scores: list[float] = []
    leads: list[int] = []
    for idx in order:
        if not free[idx] or len(fused_boxes) >= max_det:
            continue
        members = np.flatnonzero(free & (box_iou(boxes[idx : idx + 1], boxes)[0] > iou_threshold))
        members = np.union1d(members, [idx])
        free[members] = False
        weights = scores[members]
        fused_boxes.append((boxes[members] * weights[:, None]).sum(axis=0) / max(weights.sum(), 1e-12))
        best_per_pass = [scores[members][source[members] == p].max(initial=0.0) for p in range(len(passes))]
        fused_scores.append(float(np.mean(best_per_pass)))
        leads.append(int(idx))
    out_boxes = np.asarray(fused_boxes, np.float32).reshape(-1, 4)
    out_scores = np.asarray(fused_scores, np.float32)
    order = np.argsort(-out_scores, kind="stable")
    return out_boxes[order], out_scores[order], np.asarray(leads, np.int64)[order]
