"""Beat task: re-send analyses whose message was lost."""

from __future__ import annotations

from pipelines.cases.stale import requeue_stale
from pipelines.resources import get_resources
from pipelines.tasks.app import celery_app, enqueue_task


@celery_app.task(name="analysis.requeue_stale")
def requeue_stale_cases() -> int:
    settings = get_resources().settings
    sent = requeue_stale(
        database_url=settings.sqlalchemy_url,
        older_than_seconds=settings.stale_case_seconds,
        send=lambda case_id: enqueue_task("analysis.analyze_case", case_id),
    )
    return len(sent)
