"""A cheap, deterministic uncertainty score in [0, 1] used to route photos to human review.

score = (flip_disagreement + low_conf_share) / 2, where

- flip_disagreement = 1 - mean agreement between the findings of the normal pass and of a
  horizontally flipped pass (both at the operating threshold). Findings are matched greedily by
  IoU (>= `MATCH_IOU`); a matched pair agrees by IoU * (lower conf / higher conf), an unmatched
  finding agrees by 0, and the mean runs over the union (matched pairs count once). A model that
  is sure of what it sees finds the same lesions in the mirror image.
- low_conf_share = share of the normal pass's detections with confidence in the `band` (default
  0.2-0.5) among those at or above the band's lower end: many borderline lesions make the count,
  hence the grade, fragile.

No findings in either pass gives 0 for both parts: an empty, stable answer is a confident one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.metrics import box_iou

MATCH_IOU = 0.3


@dataclass(frozen=True, slots=True)
class Uncertainty:
    score: float
    flip_disagreement: float
    low_conf_share: float


def flip_disagreement(boxes_a: np.ndarray, scores_a: np.ndarray, boxes_b: np.ndarray, scores_b: np.ndarray) -> float:
    """1 - mean IoU-and-confidence agreement of two passes' findings (0 = identical, 1 = disjoint)."""
    n_a, n_b = len(scores_a), len(scores_b)
    if n_a == 0 and n_b == 0:
        return 0.0
    if n_a == 0 or n_b == 0:
        return 1.0
    iou = box_iou(boxes_a, boxes_b)
    rows, cols = np.nonzero(iou >= MATCH_IOU)
    order = np.lexsort((cols, rows, -iou[rows, cols]))  # best IoU first, ties broken by index
    used_a = np.zeros(n_a, dtype=bool)
    used_b = np.zeros(n_b, dtype=bool)
    agreement, matches = 0.0, 0
    for i, j in zip(rows[order], cols[order], strict=True):
        if used_a[i] or used_b[j]:
            continue
        used_a[i] = used_b[j] = True
        low, high = sorted((float(scores_a[i]), float(scores_b[j])))
        agreement += float(iou[i, j]) * (low / high if high > 0 else 0.0)
        matches += 1
    union = n_a + n_b - matches
    return float(np.clip(1.0 - agreement / union, 0.0, 1.0))


def low_conf_share(scores: np.ndarray, band: tuple[float, float]) -> float:
    """Share of detections at or above band[0] whose confidence is below band[1]."""
    scores = np.asarray(scores, dtype=np.float32)
    considered = scores >= band[0]
    if not considered.any():
        return 0.0
    return float(np.count_nonzero(considered & (scores < band[1])) / np.count_nonzero(considered))


def estimate(
    normal: tuple[np.ndarray, np.ndarray],
    flipped: tuple[np.ndarray, np.ndarray],
    *,
    operating_conf: float,
    band: tuple[float, float],
) -> Uncertainty:
    """Combine both parts; `normal`/`flipped` are (boxes xyxy, scores) in the same photo coordinates."""
    (boxes_n, scores_n), (boxes_f, scores_f) = normal, flipped
    keep_n, keep_f = scores_n >= operating_conf, scores_f >= operating_conf
    disagreement = flip_disagreement(boxes_n[keep_n], scores_n[keep_n], boxes_f[keep_f], scores_f[keep_f])
    share = low_conf_share(scores_n, band)
    score = float(np.clip((disagreement + share) / 2.0, 0.0, 1.0))
    return Uncertainty(score=round(score, 6), flip_disagreement=disagreement, low_conf_share=share)
