"""Training tasks, on the `training` queue so GPU machines can take them."""

from __future__ import annotations

import logging

from celery import Task

from infra.db.repositories import training_runs
from infra.db.repositories.audit import Actor
from infra.db.unit_of_work import session_scope, unit_of_work
from pipelines.mlops import erasure
from pipelines.mlops.retraining import labels_since_last_run, request_run, run_training
from pipelines.resources import get_resources
from pipelines.tasks.app import celery_app

log = logging.getLogger(__name__)

BEAT = Actor(id=None, role="system", name="beat")


@celery_app.task(bind=True, name="training.retrain", acks_late=True, reject_on_worker_lost=True, max_retries=0)
def retrain(self: Task, run_id: str) -> str:
    """No retries: a failed run is marked failed with its error; a new run is a deliberate decision."""
    resources = get_resources()
    return run_training(run_id, settings=resources.settings, store=resources.store)


@celery_app.task(name="training.maybe_retrain")
def maybe_retrain() -> str | None:
    """Beat: start a retraining once enough new reviewed labels have accumulated."""
    settings = get_resources().settings
    with unit_of_work(settings.sqlalchemy_url) as uow:
        fresh = labels_since_last_run(uow.session)
        if fresh < settings.retrain_min_new_labels or training_runs.count_active(session=uow.session):
            return None
        run_id = request_run(uow=uow, actor=BEAT, params={"from": "release", "trigger": f"{fresh} labels"}).id
    log.info("started retraining %s after %d new labels", run_id, fresh)
    return run_id


@celery_app.task(name="training.purge_erased", acks_late=True)
def purge_erased() -> dict[str, int]:
    """Remove this machine's copies of revoked snapshots and clean MLflow runs trained on them (idempotent)."""
    settings = get_resources().settings
    with session_scope(settings.sqlalchemy_url) as session:
        return erasure.purge_revoked(session=session, settings=settings)
