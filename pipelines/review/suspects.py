"""Suspect labels: the cases worth a second look, ranked.

A label is suspect where a confident model and the reviewer disagree most: confident findings the reviewer
dropped (missed boxes), boxes where the model saw nothing at all (extra boxes), a grade far from the grade the
reviewer's own boxes count to; and photos that are near-duplicates of each other (64-bit DCT perceptual hash)
are worth comparing. Pure functions on plain values; the review service loads the rows and routes the top ones
back to the queue with the reason `suspect_label` (another reviewer takes them: a reviewer never gets a case
they already labelled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import cv2
import numpy as np

from detector.grading import DEFAULT_BANDS, grade_from_count
from pipelines.review.agreement import Review, match_boxes

SUSPECT_REASON = "suspect_label"
MATCH_IOU = 0.3  # lenient: a reviewer who tightened a box still "kept" the model's lesion
MISSED_WEIGHT = 1.0  # per unit of confidence of a dropped confident finding
EXTRA_WEIGHT = 0.25  # per box the model did not see at all (models miss lesions: weighs less)
GRADE_WEIGHT = 1.5  # per grade step beyond one between the given grade and the boxes' count
DUPLICATE_SCORE = 1.0
DUPLICATE_DISAGREE_SCORE = 2.0


@dataclass(frozen=True)
class LabelledCase(Review):
    """A reviewer's final label on a case (a `Review`) and the model's answer on it (findings with confidences)."""

    findings: tuple[tuple[str, float, tuple[float, float, float, float]], ...]  # (class, confidence, box)
    phash: int | None = None


@dataclass
class Suspect:
    case_id: str
    reviewer: str
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    missed: int = 0
    extra: int = 0
    grade: int | None = None
    grade_from_boxes: int | None = None
    duplicates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "reviewer_id": self.reviewer,
            "score": round(self.score, 4),
            "reasons": self.reasons,
            "missed_boxes": self.missed,
            "extra_boxes": self.extra,
            "grade": self.grade,
            "grade_from_boxes": self.grade_from_boxes,
            "near_duplicates": self.duplicates,
        }


def label_suspicion(
    case: LabelledCase,
    *,
    to_model: Callable[[str], str | None],
    min_confidence: float,
    bands: Sequence[int] = DEFAULT_BANDS,
) -> Suspect:
    """Score one label against the model's answer; labels that train nothing (scars) are left out of the boxes."""
    suspect = Suspect(case_id=case.case_id, reviewer=case.reviewer, grade=case.grade)
    if case.grade is None:  # judged unusable: nothing to compare
        return suspect
    mine = [(mapped, coords) for label, coords in case.boxes if (mapped := to_model(label)) is not None]
    confident = [(label, box) for label, conf, box in case.findings if conf >= min_confidence]
    confidences = [conf for _, conf, _ in case.findings if conf >= min_confidence]
    kept = {j for _, j in match_boxes(mine, confident, MATCH_IOU)}
    missed = [confidences[j] for j in range(len(confident)) if j not in kept]
    every = [(label, box) for label, _, box in case.findings]
    seen = {i for i, _ in match_boxes(mine, every, MATCH_IOU)}
    extra = len(mine) - len(seen)
    from_boxes = grade_from_count(len(mine), bands).grade
    gap = abs(case.grade - from_boxes)
    suspect.missed, suspect.extra, suspect.grade_from_boxes = len(missed), extra, from_boxes
    if missed:
        suspect.score += MISSED_WEIGHT * sum(missed)
        suspect.reasons.append("missed_boxes")
    if extra:
        suspect.score += EXTRA_WEIGHT * extra
        suspect.reasons.append("extra_boxes")
    if gap >= 2:
        suspect.score += GRADE_WEIGHT * (gap - 1)
        suspect.reasons.append("grade_far_from_boxes")
    return suspect


def rank_suspects(
    cases: Sequence[LabelledCase],
    *,
    to_model: Callable[[str], str | None],
    min_confidence: float,
    bands: Sequence[int] = DEFAULT_BANDS,
    duplicate_distance: int = 6,
) -> list[Suspect]:
    """Every label's suspicion plus near-duplicate photos (more when their grades differ), highest score first;
    labels with nothing suspect are left out."""
    suspects = {
        c.case_id: label_suspicion(c, to_model=to_model, min_confidence=min_confidence, bands=bands) for c in cases
    }
    hashed = [c for c in cases if c.phash is not None]
    for a, b in combinations(hashed, 2):
        if hamming(a.phash, b.phash) > duplicate_distance:  # type: ignore[arg-type]
            continue
        differ = a.grade != b.grade
        for one, other in ((a, b), (b, a)):
            entry = suspects[one.case_id]
            entry.duplicates.append(other.case_id)
            entry.score += DUPLICATE_DISAGREE_SCORE if differ else DUPLICATE_SCORE
            reason = "near_duplicate_disagrees" if differ else "near_duplicate"
            if reason not in entry.reasons:
                entry.reasons.append(reason)
    ranked = [s for s in suspects.values() if s.score > 0]
    return sorted(ranked, key=lambda s: (-s.score, s.case_id))


def perceptual_hash(rgb: np.ndarray) -> int:
    """64-bit DCT hash (pHash): grey 32x32, DCT, the 8x8 lowest frequencies against their median."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def decode_for_hash(data: bytes) -> np.ndarray | None:
    """A stored photo as RGB for hashing (None when it cannot be decoded). Its colour profile is not applied: a
    hash is of the grey structure, and the ones already stored were taken so. The detector reads `load_stored`."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def as_mapping(to_model: Mapping[str, str | None]) -> Callable[[str], str | None]:
    """Taxonomy label -> model class; a label outside the taxonomy is taken as a model class name."""
    return lambda name: to_model.get(name, name)
