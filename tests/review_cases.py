"""One home for a finished analysis waiting in the review queue, with its photo in the store: what the review API's
tests and the review page's browser tests start from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.db.models import Case, ReviewItem
from infra.db.repositories import review as review_repo
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from infra.storage import open_store
from tests.conftest import encode, skin_photo


def queued_case(
    settings: Settings,
    *,
    size: tuple[int, int],
    findings: list[dict[str, Any]],
    grade: int,
    reason: str,
    priority: float,
    photo: dict[str, int],
    reviews_required: int = 1,
    created_at: datetime | None = None,
) -> str:
    """The case's id. `photo` holds `skin_photo`'s seed (and spots); the queue item is dated like the case."""
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    width, height = size
    with session_scope(settings.sqlalchemy_url) as session:
        case = Case(
            status="done",
            width=width,
            height=height,
            findings=findings,
            lesion_count=len(findings),
            grade=grade,
            model_version="test-model-1",
            review_queued=True,
            review_reason=reason,
            created_at=created_at or datetime.now(UTC),
        )
        session.add(case)
        session.flush()
        case.photo_key = f"cases/{case.id}/photo.jpg"
        store.put(case.photo_key, encode(skin_photo(width, height, **photo)))
        item: ReviewItem = review_repo.enqueue(
            session=session, case_id=case.id, reason=reason, priority=priority, reviews_required=reviews_required
        )
        item.created_at = case.created_at
        return case.id
