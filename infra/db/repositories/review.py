"""Review queue rows: enqueue here; claiming, leases and labels are added by the review service."""

from __future__ import annotations

from sqlalchemy.orm import Session

from infra.db.models import ReviewItem


def enqueue(*, session: Session, case_id: str, reason: str, priority: float, reviews_required: int) -> ReviewItem:
    """Idempotent: a case already queued keeps its row."""
    item = session.get(ReviewItem, case_id)
    if item is None:
        item = ReviewItem(case_id=case_id, reason=reason, priority=priority, reviews_required=reviews_required)
        session.add(item)
        session.flush()
    return item
