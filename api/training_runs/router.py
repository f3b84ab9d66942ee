"""Start and follow retraining runs (role ml-engineer)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import MlEngineer, UowDep
from api.errors import ApiError
from api.models.schemas import TrainingRunIn, TrainingRunPublic
from infra.db.models import TrainingRun
from infra.db.repositories import training_runs
from pipelines.mlops import retraining

router = APIRouter(prefix="/v1/training-runs", tags=["training"])
_ERRORS = {401: {"description": "No key"}, 403: {"description": "Wrong role"}}


def _public(row: TrainingRun) -> TrainingRunPublic:
    return TrainingRunPublic.model_validate(row)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingRunPublic,
    responses={
        **_ERRORS,
        422: {"description": "Unknown (`dataset_not_found`) or revoked (`dataset_revoked`) snapshot, invalid body"},
        503: {"description": "Queue unavailable"},
    },
)
def start_training_run(body: TrainingRunIn, principal: MlEngineer, uow: UowDep) -> TrainingRunPublic:
    params = body.model_dump(by_alias=True, exclude_none=True)
    row = retraining.request_run(uow=uow, actor=principal.actor, params=params)  # refusals: api.errors
    return _public(row)


@router.get("/{run_id}", response_model=TrainingRunPublic, responses={**_ERRORS, 404: {"description": "Unknown id"}})
def get_training_run(run_id: str, principal: MlEngineer, uow: UowDep) -> TrainingRunPublic:
    row = training_runs.get(session=uow.session, run_id=run_id)
    if row is None:
        raise ApiError(404, "training_run_not_found", "No training run with that id.")
    return _public(row)
