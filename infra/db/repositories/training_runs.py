"""Retraining runs and what triggers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.db.models import Label, TrainingRun

ACTIVE = ("queued", "running")


def create(*, session: Session, requested_by: str | None, params: dict[str, Any]) -> TrainingRun:
    row = TrainingRun(status="queued", requested_by=requested_by, params=params)
    session.add(row)
    session.flush()
    return row


def get(*, session: Session, run_id: str) -> TrainingRun | None:
    return session.get(TrainingRun, run_id)


def last_started_at(*, session: Session) -> datetime | None:
    return session.scalar(select(func.max(TrainingRun.created_at)))


def count_active(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(TrainingRun).where(TrainingRun.status.in_(ACTIVE))) or 0)


def labels_since(*, session: Session, since: datetime | None) -> int:
    """Reviewed labels given after `since` (all of them when None)."""
    query = select(func.count()).select_from(Label)
    if since is not None:
        query = query.where(Label.created_at > since)
    return int(session.scalar(query) or 0)
