"""Alias moves of registered models: MLflow only knows who holds an alias now, this table knows the story."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import AliasEvent


def add(
    *,
    session: Session,
    alias: str,
    version: str,
    previous_version: str | None,
    actor: str,
    reason: str,
    figures: dict[str, Any],
) -> AliasEvent:
    event = AliasEvent(
        alias=alias, version=version, previous_version=previous_version, actor=actor, reason=reason, figures=figures
    )
    session.add(event)
    session.flush()
    return event


def of_alias(*, session: Session, alias: str) -> list[AliasEvent]:
    """Every move of one alias, oldest first."""
    return list(session.scalars(select(AliasEvent).where(AliasEvent.alias == alias).order_by(AliasEvent.id)))


def latest(*, session: Session, limit: int = 200) -> list[AliasEvent]:
    """The newest moves of every alias, newest first."""
    return list(session.scalars(select(AliasEvent).order_by(AliasEvent.id.desc()).limit(limit)))
