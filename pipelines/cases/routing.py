"""Which cases dermatologists should see, why, and in what order.

Pure logic on the analysis outcome (settings give the thresholds): the Celery task and the synchronous API path both call `decide`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

from detector.findings import Detection
from detector.grading import distance_to_boundary
from infra.settings import Settings
from quality_gate import QualityReport


@dataclass(frozen=True)
class RoutingPolicy:
    """The routing thresholds; their defaults and meaning live in `Settings` (`review_*`), the one home."""

    conf_low: float
    conf_high: float
    uncertain_share: float
    uncertainty_threshold: float
    quality_margin: float
    grade_boundary: int
    grade_probability_min: float  # graded models: queue when the top grade probability is below it (0: off)
    audit_rate: float
    double_rate: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingPolicy:
        return cls(**settings.section("review_", (f.name for f in fields(cls))))


@dataclass(frozen=True)
class ReviewDecision:
    queued: bool
    reason: str | None  # comma-separated reason codes, most informative first
    priority: float  # higher first: the grade dominates, informativeness breaks ties within a grade
    reviews_required: int = 1

    @classmethod
    def not_queued(cls) -> ReviewDecision:
        return cls(queued=False, reason=None, priority=0.0)


def stable_fraction(case_id: str, salt: str) -> float:
    """A deterministic number in [0, 1) per case, so a retried task makes the same audit choice."""
    digest = hashlib.sha256(f"{salt}:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(
    *,
    case_id: str,
    detection: Detection,
    quality: QualityReport,
    bands: tuple[int, int, int],
    policy: RoutingPolicy,
) -> ReviewDecision:
    """Queue a case when the model is unsure, the photo barely passed, the grade is fragile, or for audit."""
    reasons: list[tuple[str, float]] = []  # (code, informativeness 0..1)
    confidences = [f.confidence for f in detection.findings if f.confidence >= policy.conf_low]
    in_band = [c for c in confidences if c < policy.conf_high]
    if confidences and len(in_band) / len(confidences) >= policy.uncertain_share:
        reasons.append(("uncertain_findings", len(in_band) / len(confidences)))
    if detection.uncertainty >= policy.uncertainty_threshold:
        reasons.append(("high_uncertainty", detection.uncertainty))
    if quality.margin < policy.quality_margin:
        reasons.append(("borderline_quality", 1.0 - quality.margin / max(policy.quality_margin, 1e-9)))
    probabilities = detection.severity.probabilities
    if probabilities is not None and policy.grade_probability_min > 0:
        # A graded model says how sure it is of the grade: that replaces the count-distance rule (on ACNE04
        # valid's report part it catches more wrong grades per case routed, see detector/grader_fit.py).
        if max(probabilities) < policy.grade_probability_min:
            reasons.append(("uncertain_grade", 1.0 - max(probabilities)))
    elif distance_to_boundary(detection.lesion_count, bands) <= policy.grade_boundary:
        reasons.append(("near_grade_boundary", 0.5))
    audit = not reasons and stable_fraction(case_id, "audit") < policy.audit_rate
    if audit:
        reasons.append(("audit_sample", 0.0))
    if not reasons:
        return ReviewDecision.not_queued()
    reasons.sort(key=lambda r: -r[1])
    informativeness = min(1.0, sum(score for _, score in reasons) / 2.0)
    double = stable_fraction(case_id, "double") < policy.double_rate
    return ReviewDecision(
        queued=True,
        reason=",".join(code for code, _ in reasons),
        priority=round(detection.severity.grade + informativeness * 0.99, 4),
        reviews_required=2 if double else 1,
    )
