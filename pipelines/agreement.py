"""Agreement between dermatologists: box F1 at an IoU threshold, Cohen's kappa on grades, consensus.

Pure functions on plain values, so the statistics endpoint and the unit tests share one definition.
Boxes are `(label, (x1, y1, x2, y2))` in photo pixels; two boxes match when the labels are equal and the
IoU reaches the threshold, each box matching at most once (greedy, largest IoU first).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

Coords = tuple[float, float, float, float]
LabelledBox = tuple[str, Coords]
IOU_THRESHOLD = 0.5
MIN_BOX_F1 = 0.5
GRADES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Review:
    """One reviewer's answer on one case (grade None: the photo was judged unusable)."""

    case_id: str
    reviewer: str
    grade: int | None
    boxes: tuple[LabelledBox, ...]


def iou(a: Coords, b: Coords) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    a: Sequence[LabelledBox], b: Sequence[LabelledBox], iou_threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int]]:
    """Index pairs (i in a, j in b) of matched boxes: same label, IoU >= threshold, one-to-one, best IoU first."""
    candidates = sorted(
        (
            (iou(box_a, box_b), i, j)
            for i, (label_a, box_a) in enumerate(a)
            for j, (label_b, box_b) in enumerate(b)
            if label_a == label_b
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for value, i, j in candidates:
        if value < iou_threshold:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


@dataclass(frozen=True)
class BoxCounts:
    """Matched boxes and box totals on both sides; summed over cases they give a micro-averaged F1."""

    matched: int = 0
    total: int = 0  # len(a) + len(b)

    def __add__(self, other: BoxCounts) -> BoxCounts:
        return BoxCounts(self.matched + other.matched, self.total + other.total)

    @property
    def f1(self) -> float:
        """2 * matches / (|a| + |b|): symmetric, so neither side needs to be the ground truth. No boxes: 1."""
        return 1.0 if self.total == 0 else 2 * self.matched / self.total


def box_counts(a: Sequence[LabelledBox], b: Sequence[LabelledBox], iou_threshold: float = IOU_THRESHOLD) -> BoxCounts:
    return BoxCounts(len(match_boxes(a, b, iou_threshold)), len(a) + len(b))


def box_f1(a: Sequence[LabelledBox], b: Sequence[LabelledBox], iou_threshold: float = IOU_THRESHOLD) -> float:
    return box_counts(a, b, iou_threshold).f1


def cohen_kappa(x: Sequence[int], y: Sequence[int], categories: Sequence[int] = GRADES) -> float | None:
    """Cohen's kappa of two raters on the same items; None when undefined (no items, or chance agreement 1)."""
    if len(x) != len(y):
        raise ValueError("both raters must rate the same items")
    n = len(x)
    if n == 0:
        return None
    observed = sum(1 for a, b in zip(x, y, strict=True) if a == b) / n
    count_x, count_y = Counter(x), Counter(y)
    cats = set(categories) | set(count_x) | set(count_y)
    expected = sum(count_x[c] * count_y[c] for c in cats) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def consensus_grade(grades: Sequence[int | None]) -> int | None:
    """The grade a strict majority gave; None without one (a tie waits for an adjudicating review)."""
    given = [g for g in grades if g is not None]
    if not given:
        return None
    grade, votes = Counter(given).most_common(1)[0]
    return grade if votes * 2 > len(given) else None


def consensus_boxes(
    box_sets: Sequence[Sequence[LabelledBox]], iou_threshold: float = IOU_THRESHOLD
) -> list[LabelledBox]:
    """Boxes that a strict majority of reviewers drew (matched greedily onto clusters), averaged.

    Each reviewer's boxes are matched one-to-one against the current cluster means, so a reviewer adds at
    most one box to a cluster; clusters drawn by more than half of the reviewers are kept.
    """
    clusters: list[tuple[str, list[Coords]]] = []
    for boxes in box_sets:
        means = [(label, _mean(members)) for label, members in clusters]
        pairs = match_boxes(list(boxes), means, iou_threshold)
        matched = {i for i, _ in pairs}
        for i, j in pairs:
            clusters[j][1].append(boxes[i][1])
        clusters.extend((label, [coords]) for i, (label, coords) in enumerate(boxes) if i not in matched)
    need = len(box_sets) / 2
    return [(label, _mean(members)) for label, members in clusters if len(members) > need]


def _mean(members: Sequence[Coords]) -> Coords:
    n = len(members)
    x1, y1, x2, y2 = (sum(m[k] for m in members) / n for k in range(4))
    return (x1, y1, x2, y2)


def disagree(a: Review, b: Review, min_box_f1: float = MIN_BOX_F1, iou_threshold: float = IOU_THRESHOLD) -> bool:
    """Two reviews disagree when the grades differ or their boxes match with F1 below `min_box_f1`."""
    return a.grade != b.grade or box_f1(a.boxes, b.boxes, iou_threshold) < min_box_f1


def agreement_report(reviews: Sequence[Review], iou_threshold: float = IOU_THRESHOLD) -> dict[str, Any]:
    """Per reviewer pair: cases in common, micro box F1 and grade kappa. Per reviewer: reliability against the
    consensus of the case's reviewers (share of their grades equal to the majority grade, box F1 against the
    majority boxes), on cases with at least two reviews."""
    by_case: dict[str, list[Review]] = defaultdict(list)
    for review in reviews:
        by_case[review.case_id].append(review)
    pair_boxes: dict[tuple[str, str], BoxCounts] = defaultdict(BoxCounts)
    pair_grades: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    pair_cases: Counter[tuple[str, str]] = Counter()
    own_boxes: dict[str, BoxCounts] = defaultdict(BoxCounts)
    own_grades: dict[str, list[bool]] = defaultdict(list)
    own_cases: Counter[str] = Counter()
    for case_reviews in by_case.values():
        if len({r.reviewer for r in case_reviews}) < 2:
            continue
        for first, second in combinations(sorted(case_reviews, key=lambda r: r.reviewer), 2):
            if first.reviewer == second.reviewer:
                continue
            key = (first.reviewer, second.reviewer)
            pair_cases[key] += 1
            pair_boxes[key] += box_counts(first.boxes, second.boxes, iou_threshold)
            if first.grade is not None and second.grade is not None:
                pair_grades[key][0].append(first.grade)
                pair_grades[key][1].append(second.grade)
        grade = consensus_grade([r.grade for r in case_reviews])
        boxes = consensus_boxes([r.boxes for r in case_reviews], iou_threshold)
        for review in case_reviews:
            own_cases[review.reviewer] += 1
            own_boxes[review.reviewer] += box_counts(review.boxes, boxes, iou_threshold)
            if grade is not None and review.grade is not None:
                own_grades[review.reviewer].append(review.grade == grade)
    pairs = [
        {
            "reviewers": list(key),
            "cases": pair_cases[key],
            "box_f1": round(pair_boxes[key].f1, 4),
            "grade_kappa": _round(cohen_kappa(*pair_grades[key])),
        }
        for key in sorted(pair_cases)
    ]
    reviewers = [
        {
            "reviewer": name,
            "cases": own_cases[name],
            "grade_agreement": _round(sum(own_grades[name]) / len(own_grades[name]) if own_grades[name] else None),
            "box_f1_vs_consensus": round(own_boxes[name].f1, 4),
        }
        for name in sorted(own_cases)
    ]
    return {"iou_threshold": iou_threshold, "pairs": pairs, "reviewers": reviewers}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
