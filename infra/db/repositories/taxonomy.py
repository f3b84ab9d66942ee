"""The lesion taxonomy: the labels reviewers use and the model class each one trains."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import LabelType


def active(*, session: Session) -> list[LabelType]:
    """Active label types in display order."""
    return list(
        session.scalars(
            select(LabelType).where(LabelType.active.is_(True)).order_by(LabelType.position, LabelType.name)
        )
    )


def model_class_map(*, session: Session) -> dict[str, str | None]:
    """label name -> model class (None: not trained), over every label type ever used, active or not."""
    return {t.name: t.model_class for t in session.scalars(select(LabelType))}
