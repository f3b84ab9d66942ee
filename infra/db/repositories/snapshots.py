"""Dataset snapshots the system built or imported: the only training data a request may name (by id)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import DatasetSnapshot, utcnow


def register(
    *, session: Session, snapshot_id: str, digest: str, source: str, path: str, case_ids: list[str]
) -> DatasetSnapshot:
    """Idempotent: a snapshot already registered keeps its row (and its revocation, if any)."""
    row = session.get(DatasetSnapshot, snapshot_id)
    if row is None:
        row = DatasetSnapshot(id=snapshot_id, digest=digest, source=source, path=path, case_ids=sorted(case_ids))
        session.add(row)
        session.flush()
    return row


def get(*, session: Session, snapshot_id: str) -> DatasetSnapshot | None:
    return session.get(DatasetSnapshot, snapshot_id)


def list_all(*, session: Session) -> list[DatasetSnapshot]:
    return list(session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.created_at.desc())))


def holding_case(*, session: Session, case_id: str) -> list[DatasetSnapshot]:
    """Snapshots whose photos include this case (a scan of a short table; case ids live in a JSON list)."""
    return [row for row in session.scalars(select(DatasetSnapshot)) if case_id in (row.case_ids or [])]


def revoked(*, session: Session) -> list[DatasetSnapshot]:
    return list(session.scalars(select(DatasetSnapshot).where(DatasetSnapshot.revoked_at.is_not(None))))


def revoke(*, session: Session, row: DatasetSnapshot, reason: str) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = reason
        session.flush()
