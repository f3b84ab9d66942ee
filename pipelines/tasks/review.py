"""Beat task: return cases whose review lease ran out to the queue."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.db.engine import session_scope
from infra.db.repositories import cases as cases_repo
from infra.db.repositories import review as review_repo
from pipelines.celery_app import celery_app
from pipelines.runtime import get_runtime


@celery_app.task(name="review.expire_leases")
def expire_leases() -> int:
    with session_scope(get_runtime().settings.sqlalchemy_url) as session:
        expired = review_repo.expire_leases(session=session, now=datetime.now(UTC))
        for case_id, reviewer_id in expired:
            cases_repo.record_audit(
                session=session,
                action="review.lease_expired",
                actor_id=reviewer_id,
                role="dermatologist",
                target=case_id,
            )
    return len(expired)
