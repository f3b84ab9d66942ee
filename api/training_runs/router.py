"""Start and follow retraining runs (role ml-engineer)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.analyses.service import as_utc
from api.deps import MlEngineer, UowDep
from api.errors import ApiError
from api.models.schemas import TrainingRunIn, TrainingRunPublic
from infra.db.models import TrainingRun
from infra.db.repositories import cases as cases_repo
from infra.db.repositories import training_runs
from pipelines.mlops import datasets
from pipelines.tasks.app import enqueue_task

router = APIRouter(prefix="/v1/training-runs", tags=["training"])
_ERRORS = {401: {"description": "No key"}, 403: {"description": "Wrong role"}}


def _public(row: TrainingRun) -> TrainingRunPublic:
    return TrainingRunPublic(
        id=row.id,
        status=row.status,
        progress=row.progress,
        params=row.params,
        metrics=row.metrics,
        mlflow_run_id=row.mlflow_run_id,
        model_version=row.model_version,
        dataset_digest=row.dataset_digest,
        error=row.error,
        created_at=as_utc(row.created_at),
    )


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
    if body.dataset is not None:
        try:
            datasets.check_available(session=uow.session, snapshot_id=body.dataset)
        except datasets.DatasetRefused as exc:
            raise ApiError(422, exc.code, exc.message) from exc
    row = training_runs.create(session=uow.session, requested_by=principal.key_id, params=params)
    cases_repo.record_audit(
        session=uow.session,
        action="training.started",
        actor_id=principal.key_id,
        role=principal.role,
        target=row.id,
        details=params,
    )
    run_id = row.id
    uow.after_commit(lambda: enqueue_task("training.retrain", run_id))
    try:
        uow.commit()
    except ApiError:
        raise
    except Exception as exc:
        stale = training_runs.get(session=uow.session, run_id=run_id)
        if stale is not None:
            stale.status, stale.error = "failed", "could not be queued"
            uow.session.commit()
        raise ApiError(
            503, "queue_unavailable", "The training queue is unavailable.", headers={"Retry-After": "30"}
        ) from exc
    return _public(row)


@router.get("/{run_id}", response_model=TrainingRunPublic, responses={**_ERRORS, 404: {"description": "Unknown id"}})
def get_training_run(run_id: str, principal: MlEngineer, uow: UowDep) -> TrainingRunPublic:
    row = training_runs.get(session=uow.session, run_id=run_id)
    if row is None:
        raise ApiError(404, "training_run_not_found", "No training run with that id.")
    return _public(row)
