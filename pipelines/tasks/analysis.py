"""Asynchronous analysis of an uploaded photo."""

from __future__ import annotations

from celery import Task

from infra.storage import StorageUnavailable
from pipelines.cases.lifecycle import complete_pending_case
from pipelines.resources import get_resources
from pipelines.tasks.app import celery_app


@celery_app.task(
    bind=True,
    name="analysis.analyze_case",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError, ConnectionError, StorageUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def analyze_case(self: Task, case_id: str) -> str:
    return complete_pending_case(case_id, get_resources())
