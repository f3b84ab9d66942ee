"""The dataset snapshots ML engineers may train on (by id): built by retraining or registered from the CLI."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import MlEngineer, UowDep
from api.models.schemas import DatasetPublic
from api.public import as_utc
from infra.db.repositories import snapshots as snapshots_repo

router = APIRouter(prefix="/v1/datasets", tags=["training"])


@router.get(
    "",
    response_model=list[DatasetPublic],
    responses={401: {"description": "No key"}, 403: {"description": "Wrong role"}},
)
def list_datasets(principal: MlEngineer, uow: UowDep) -> list[DatasetPublic]:
    return [
        DatasetPublic(
            id=row.id,
            digest=row.digest,
            source=row.source,
            cases=len(row.case_ids or []),
            created_at=as_utc(row.created_at),
            revoked=row.revoked_at is not None,
            revoked_reason=row.revoked_reason,
        )
        for row in snapshots_repo.list_all(session=uow.session)
    ]
