"""The analysis itself: pixels -> quality gate -> detector -> review routing, and writing the result onto a case.

`pipelines.cases.lifecycle` calls it for the API (sync and async) and the Celery task; the CLI calls
`analyze_jpeg` directly. Nothing here commits.
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
from detector.scale import locate_skin
from infra.db.models import Case
from infra.db.repositories import review as review_repo
from infra.settings import Settings
from pipelines.cases.photos import Pixels, decode_stored
from pipelines.cases.routing import ReviewDecision, RoutingPolicy, decide
from quality_gate import QualityReport, Thresholds, assess
from quality_gate.policy import RETAKE_CODES


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


# Stored photos are decoded at the smallest JPEG scale whose long side reaches this: 1.6x the skin extent
# models train at, so the skin of a close-up is never enlarged from a reduced copy, and a 12 MP photo decodes at
# 1/4 (1008 x 756: a few MB per analysis slot). `load_pixels` decodes more when the skin is small in the frame.
ANALYSIS_LONG_SIDE = 960


def load_pixels(jpeg: bytes, detector: Detector) -> Pixels:
    """The stored photo's pixels at the resolution the detector needs, never more.

    A close-up decodes at 1/2-1/8 scale. When the skin fills little of a large frame (taken from further away),
    the detector would enlarge that reduced copy: decode again with enough pixels instead.
    """
    pixels = decode_stored(jpeg, min_long_side=ANALYSIS_LONG_SIDE)
    if max(pixels.scale) > 1.0:
        plan = detector.plan(pixels.rgb, locate_skin(pixels.rgb))
        if plan.factor > 1.0:
            needed = int(np.ceil(max(pixels.rgb.shape[:2]) * plan.factor))
            pixels = decode_stored(jpeg, min_long_side=needed)
    return pixels


def analyze(
    pixels: Pixels,
    *,
    photo_size: tuple[int, int],
    case_id: str,
    detector: Detector,
    thresholds: Thresholds,
    policy: RoutingPolicy,
    embedding_check: bool,
    skip_quality_gate: bool = False,
    conf: float | None = None,
) -> AnalysisOutcome:
    """Gate, detect and route one photo; findings come back in the photo's own pixels (`photo_size`, W x H).

    `embedding_check` has no default here: it is `Settings.embedding_ood_check`, so every caller serves alike."""
    quality = assess(pixels.rgb, thresholds, photo_size=photo_size)
    if not quality.accepted and not skip_quality_gate:
        return AnalysisOutcome(quality=quality, detection=None, review=ReviewDecision.not_queued())
    detection = detector.predict(pixels.rgb, conf=conf).scaled(*pixels.scale)
    refused = refuse_out_of_distribution(quality, detection) if embedding_check else None
    if refused is not None and not skip_quality_gate:
        return AnalysisOutcome(quality=refused, detection=None, review=ReviewDecision.not_queued())
    review = decide(
        case_id=case_id, detection=detection, quality=quality, bands=detector.card.grade_bands, policy=policy
    )
    return AnalysisOutcome(quality=quality, detection=detection, review=review)


def refuse_out_of_distribution(quality: QualityReport, detection: Detection) -> QualityReport | None:
    """The gate's verdict when the detector's embedding is beyond its model's limit (issue 12), else None.

    The pixel gate cannot tell every non-skin photo from skin; the detector's own features can: a photo far from
    the training photos is refused like any gate refusal (`not_skin_photo`, same hint), nothing counted or graded.
    """
    distance = detection.extras.get("embedding_distance")
    limit = detection.extras.get("embedding_limit")
    if distance is None or limit is None or distance <= limit:
        return None
    return dataclasses.replace(
        quality,
        accepted=False,
        retake_codes=["not_skin_photo"],
        hints=[RETAKE_CODES["not_skin_photo"]],
        measures={**quality.measures, "embedding_distance": float(distance), "embedding_limit": float(limit)},
        margin=round(min(1.0, (distance - limit) / limit), 4),
    )


def analyze_jpeg(jpeg: bytes, *, detector: Detector, **options: Any) -> AnalysisOutcome:
    """`analyze` on a stored (sanitised) JPEG: every entry point analyses these bytes, so all agree."""
    return analyze(load_pixels(jpeg, detector), detector=detector, **options)


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
