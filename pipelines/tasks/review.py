"""Beat tasks: return cases whose review lease ran out to the queue; look again at few-lesion photos; send the
most suspect labels to another reviewer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.db.repositories import audit
from infra.db.repositories import review as review_repo
from infra.db.unit_of_work import session_scope
from pipelines.resources import get_resources
from pipelines.review import second_look
from pipelines.review.missed_lesions import MissedLesionPolicy, sweep
from pipelines.tasks.app import celery_app


@celery_app.task(name="review.expire_leases")
def expire_leases() -> int:
    with session_scope(get_resources().settings.sqlalchemy_url) as session:
        expired = review_repo.expire_leases(session=session, now=datetime.now(UTC))
        for case_id, reviewer_id in expired:
            audit.record(
                session=session,
                action="review.lease_expired",
                actor=audit.Actor(id=reviewer_id, role="dermatologist", name=reviewer_id),
                target=case_id,
            )
    return len(expired)


@celery_app.task(name="review.sweep_missed_lesions")
def sweep_missed_lesions(window_seconds: float = 3600.0) -> int:
    """Look again at recent few-lesion photos (see `pipelines.review.missed_lesions`)."""
    resources = get_resources()
    with session_scope(resources.settings.sqlalchemy_url) as session:
        queued = sweep(
            session=session,
            store=resources.store,
            detector=resources.models.get(),
            policy=MissedLesionPolicy.from_settings(resources.settings),
            since=datetime.now(UTC) - timedelta(seconds=window_seconds),
        )
    return len(queued)


@celery_app.task(name="review.route_suspects")
def route_suspects() -> int:
    """Send the most suspect finished labels for a second look (see `pipelines.review.second_look`)."""
    resources = get_resources()
    with session_scope(resources.settings.sqlalchemy_url) as session:
        routed = second_look.route_most_suspect(
            session=session,
            store=resources.store,
            settings=resources.settings,
            bands=resources.models.get().card.grade_bands,
        )
    return len(routed)
