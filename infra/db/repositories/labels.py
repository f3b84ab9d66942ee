"""Dermatologists' labels: stored with reviewer, time and the model version they corrected."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.db.models import Case, DeletedCase, Label, ReviewItem


class ReviewedSample(NamedTuple):
    """One finished case as training data: boxes are `{"label", "box": [x1, y1, x2, y2]}` in photo pixels."""

    case_id: str
    photo_key: str
    width: int
    height: int
    boxes: list[dict[str, Any]]
    grade: int | None
    reviewer_id: str | None = None  # who gave the final label


def add(
    *,
    session: Session,
    case_id: str,
    reviewer_id: str,
    verdict: str,
    grade: int | None,
    boxes: list[dict[str, Any]],
    model_version: str | None,
) -> Label:
    label = Label(
        case_id=case_id, reviewer_id=reviewer_id, verdict=verdict, grade=grade, boxes=boxes, model_version=model_version
    )
    session.add(label)
    session.flush()
    return label


def count(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Label)) or 0


def for_case(*, session: Session, case_id: str) -> list[Label]:
    return list(session.scalars(select(Label).where(Label.case_id == case_id).order_by(Label.created_at, Label.id)))


def of_multi_reviewed(*, session: Session) -> list[Label]:
    """Labels of cases that asked for more than one review (the agreement statistics' input)."""
    query = (
        select(Label)
        .join(ReviewItem, ReviewItem.case_id == Label.case_id)
        .where(ReviewItem.reviews_required > 1)
        .order_by(Label.case_id, Label.created_at, Label.id)
    )
    return list(session.scalars(query))


def with_cases(*, session: Session) -> list[tuple[Label, Case]]:
    """Every label with its case (the model's findings and grade), by case then time: reliability against the model
    and the suspects' input."""
    query = select(Label, Case).join(Case, Case.id == Label.case_id).order_by(Label.case_id, Label.created_at, Label.id)
    return [(label, case) for label, case in session.execute(query)]


def final_labels(*, session: Session) -> list[tuple[Label, Case, ReviewItem]]:
    """The last label of every finished review, with its case and queue row (the suspects' input)."""
    query = (
        select(Label, Case, ReviewItem)
        .join(Case, Case.id == Label.case_id)
        .join(ReviewItem, ReviewItem.case_id == Label.case_id)
        .where(ReviewItem.status == "done")
        .order_by(Case.created_at, Case.id, Label.created_at, Label.id)
    )
    final: dict[str, tuple[Label, Case, ReviewItem]] = {}
    for label, case, item in session.execute(query):
        final[case.id] = (label, case, item)
    return list(final.values())


def reviewed_samples(session: Session, exclude_deleted: bool = True) -> list[ReviewedSample]:
    """Cases whose review is finished, with their final label, oldest first.

    The final label is the last one given: on a single review that review, on a double review that agreed the
    second one, after a disagreement the third (adjudicating) one. Cases judged `unusable_photo` and cases
    without a stored photo are left out. Deleted cases are gone from the table; `exclude_deleted` also checks
    the tombstones, so a restored backup cannot bring one back into a dataset.
    """
    query = (
        select(Case, Label)
        .join(ReviewItem, ReviewItem.case_id == Case.id)
        .join(Label, Label.case_id == Case.id)
        .where(ReviewItem.status == "done", Case.photo_key.is_not(None))
        .order_by(Case.created_at, Case.id, Label.created_at, Label.id)
    )
    if exclude_deleted:
        query = query.where(Case.id.not_in(select(DeletedCase.case_id)))
    final: dict[str, tuple[Case, Label]] = {}
    for case, label in session.execute(query):
        final[case.id] = (case, label)  # ordered by time: the last one wins
    return [
        ReviewedSample(
            case_id=case.id,
            photo_key=case.photo_key or "",
            width=case.width,
            height=case.height,
            boxes=[{"label": str(b["label"]), "box": [float(v) for v in b["box"]]} for b in label.boxes],
            grade=label.grade,
            reviewer_id=label.reviewer_id,
        )
        for case, label in final.values()
        if label.verdict != "unusable_photo"
    ]
