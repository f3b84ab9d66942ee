"""The analysis service: quality gate -> detector -> review routing, and writing the result onto a case.

Both the synchronous API path and the Celery task call `analyze` and `record_outcome`; neither commits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from detector.findings import Detection
from detector.onnx_runtime import Detector
from infra.db.models import Case
from infra.db.repositories import review as review_repo
from infra.settings import Settings
from pipelines.review_routing import ReviewDecision, RoutingPolicy, decide
from quality_gate import QualityReport, Thresholds, assess


@dataclass(frozen=True)
class AnalysisOutcome:
    quality: QualityReport
    detection: Detection | None  # None when the gate rejected the photo
    review: ReviewDecision

    @property
    def rejected(self) -> bool:
        return self.detection is None


def thresholds_from(settings: Settings) -> Thresholds:
    """The gate's calibrated defaults, overridden by name from settings."""
    return dataclasses.replace(Thresholds(), **settings.quality_thresholds)


def policy_from(settings: Settings) -> RoutingPolicy:
    return RoutingPolicy(
        conf_low=settings.review_conf_low,
        conf_high=settings.review_conf_high,
        uncertain_share=settings.review_uncertain_share,
        uncertainty_threshold=settings.review_uncertainty_threshold,
        quality_margin=settings.review_quality_margin,
        grade_boundary=settings.review_grade_boundary,
        grade_probability_min=settings.review_grade_probability_min,
        audit_rate=settings.review_audit_rate,
        double_rate=settings.review_double_rate,
    )


def analyze(
    rgb: np.ndarray,
    *,
    case_id: str,
    detector: Detector,
    thresholds: Thresholds,
    policy: RoutingPolicy,
    skip_quality_gate: bool = False,
    conf: float | None = None,
) -> AnalysisOutcome:
    quality = assess(rgb, thresholds)
    if not quality.accepted and not skip_quality_gate:
        return AnalysisOutcome(quality=quality, detection=None, review=ReviewDecision.not_queued())
    detection = detector.predict(rgb, conf=conf)
    review = decide(
        case_id=case_id, detection=detection, quality=quality, bands=detector.card.grade_bands, policy=policy
    )
    return AnalysisOutcome(quality=quality, detection=detection, review=review)


def record_outcome(*, session: Session, case: Case, outcome: AnalysisOutcome) -> None:
    """Write the outcome onto the case row and queue it for review when routing says so."""
    case.quality = outcome.quality.to_dict()
    case.completed_at = datetime.now(UTC)
    if outcome.detection is None:
        case.status = "rejected"
        return
    det = outcome.detection
    case.status = "done"
    case.findings = [f.to_dict() for f in det.findings]
    case.lesion_count = det.lesion_count
    case.grade = det.severity.grade
    detail = {k: v for k, v in det.severity.to_dict().items() if k not in ("grade", "label")}
    case.severity_detail = detail or None
    case.uncertainty = round(det.uncertainty, 4)
    case.model_version = det.model_version
    case.review_queued = outcome.review.queued
    case.review_reason = outcome.review.reason
    if outcome.review.queued and outcome.review.reason:
        review_repo.enqueue(
            session=session,
            case_id=case.id,
            reason=outcome.review.reason,
            priority=outcome.review.priority,
            reviews_required=outcome.review.reviews_required,
        )


def outcome_to_dict(outcome: AnalysisOutcome) -> dict[str, Any]:
    """The CLI's JSON line for one photo (the API renders the same fields from the stored case)."""
    det = outcome.detection
    return {
        "quality": outcome.quality.to_dict(),
        "findings": [f.to_dict() for f in det.findings] if det else [],
        "lesion_count": det.lesion_count if det else None,
        "severity": det.severity.to_dict() if det else None,
        "uncertainty": round(det.uncertainty, 4) if det else None,
        "model_version": det.model_version if det else None,
        "review": {"queued": outcome.review.queued, "reason": outcome.review.reason},
    }
