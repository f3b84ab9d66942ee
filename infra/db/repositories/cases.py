"""Cases: one uploaded photo and its analysis."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import Case, DeletedCase


def get(*, session: Session, case_id: str) -> Case | None:
    return session.get(Case, case_id)


def get_for_update(*, session: Session, case_id: str) -> Case | None:
    return session.scalar(select(Case).where(Case.id == case_id).with_for_update())


def find_by_idempotency(*, session: Session, api_key_id: str, idempotency_key: str) -> Case | None:
    return session.scalar(select(Case).where(Case.api_key_id == api_key_id, Case.idempotency_key == idempotency_key))


def add(*, session: Session, case: Case) -> Case:
    session.add(case)
    session.flush()
    return case


def delete_case(*, session: Session, case: Case) -> None:
    """Remove the row and everything hanging off it (labels, review items cascade); leave a tombstone."""
    session.add(DeletedCase(case_id=case.id))
    session.delete(case)
    session.flush()


def deleted_ids(*, session: Session) -> set[str]:
    return set(session.scalars(select(DeletedCase.case_id)))


def list_since(*, session: Session, since: datetime) -> list[Case]:
    return list(session.scalars(select(Case).where(Case.created_at >= since)))


def pending_before(*, session: Session, before: datetime, limit: int = 500) -> list[str]:
    """Ids of cases still pending that were created before `before` (oldest first)."""
    query = select(Case.id).where(Case.status == "pending", Case.created_at < before).order_by(Case.created_at)
    return list(session.scalars(query.limit(limit)))
