"""Beat task: re-send analyses whose message was lost."""

from __future__ import annotations

from pipelines.celery_app import celery_app, enqueue_task
from pipelines.runtime import get_runtime
from pipelines.stale_cases import requeue_stale


@celery_app.task(name="analysis.requeue_stale")
def requeue_stale_cases() -> int:
    settings = get_runtime().settings
    sent = requeue_stale(
        database_url=settings.sqlalchemy_url,
        older_than_seconds=settings.stale_case_seconds,
        send=lambda case_id: enqueue_task("analysis.analyze_case", case_id),
    )
    return len(sent)
