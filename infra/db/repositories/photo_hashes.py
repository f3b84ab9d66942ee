"""Perceptual hashes of case photos, computed once and kept (a deleted case takes its hash with it)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import PhotoHash


def get_many(*, session: Session, case_ids: Iterable[str]) -> dict[str, int]:
    ids = list(case_ids)
    if not ids:
        return {}
    rows = session.scalars(select(PhotoHash).where(PhotoHash.case_id.in_(ids)))
    return {row.case_id: int(row.phash, 16) for row in rows}


def add(*, session: Session, case_id: str, phash: int) -> None:
    session.merge(PhotoHash(case_id=case_id, phash=f"{phash:016x}"))
    session.flush()
