"""The missed-lesion route: photos where the model found few lesions but its own evidence says otherwise.

The analysis routes a case when the model is unsure of what it found; a photo where it found nothing is a
confident, stable answer and was never routed, even when the truth had ten lesions. This sweep looks again at
a deterministic sample of recent finished cases with at most `missed_lesion_max_count` lesions that were not
queued, computes the detector's objectness map (`detector.heatmap`) and queues the case with the reason
`missed_lesions` when the evidence below the operating threshold (`score_mass`) or the stored uncertainty says
there may be more. Idempotent: a queued case keeps its row; a case is only ever sampled the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.heatmap import objectness_map, score_mass
from detector.onnx_runtime import Detector
from infra.db.models import Case
from infra.db.repositories import review as review_repo
from infra.settings import Settings
from infra.storage import PhotoStore
from pipelines.cases.photos import load_stored_or_none
from pipelines.cases.routing import stable_fraction

log = logging.getLogger(__name__)
REASON = "missed_lesions"


@dataclass(frozen=True)
class MissedLesionPolicy:
    """The sweep's thresholds; defaults and meaning live in `Settings` (`missed_lesion_*`)."""

    max_count: int
    min_mass: float
    min_uncertainty: float
    sample_rate: float

    @classmethod
    def from_settings(cls, settings: Settings) -> MissedLesionPolicy:
        return cls(**settings.section("missed_lesion_", (f.name for f in fields(cls))))


def sampled(case_id: str, policy: MissedLesionPolicy) -> bool:
    return stable_fraction(case_id, "missed_lesions") < policy.sample_rate


def should_route(*, lesion_count: int, uncertainty: float, mass: float, policy: MissedLesionPolicy) -> bool:
    """Few lesions found, yet the sub-threshold evidence or the uncertainty says look again."""
    return lesion_count <= policy.max_count and (mass >= policy.min_mass or uncertainty >= policy.min_uncertainty)


def candidates(*, session: Session, since: datetime, policy: MissedLesionPolicy) -> list[Case]:
    query = (
        select(Case)
        .where(
            Case.status == "done",
            Case.review_queued.is_(False),
            Case.photo_key.is_not(None),
            Case.lesion_count <= policy.max_count,
            Case.created_at >= since,
        )
        .order_by(Case.created_at, Case.id)
    )
    return [case for case in session.scalars(query) if sampled(case.id, policy)]


def sweep(
    *, session: Session, store: PhotoStore, detector: Detector, policy: MissedLesionPolicy, since: datetime
) -> list[tuple[str, float]]:
    """Queue the sampled few-lesion cases since `since` whose evidence says otherwise; (case_id, mass) queued.
    The caller commits."""
    queued = []
    for case in candidates(session=session, since=since, policy=policy):
        rgb = load_stored_or_none(store.get(case.photo_key or ""))  # in sRGB, as the detector learned
        if rgb is None:
            continue
        mass = score_mass(objectness_map(detector, rgb), below=detector.card.operating_conf)
        if not should_route(
            lesion_count=case.lesion_count or 0, uncertainty=case.uncertainty or 0.0, mass=mass, policy=policy
        ):
            continue
        review_repo.enqueue(
            session=session,
            case_id=case.id,
            reason=REASON,
            priority=round((case.grade or 0) + min(0.99, mass / (4 * policy.min_mass)), 4),
            reviews_required=1,
        )
        case.review_queued, case.review_reason = True, REASON
        queued.append((case.id, round(mass, 3)))
    if queued:
        log.info("queued %d possibly-missed-lesion case(s) for review", len(queued))
    return queued
