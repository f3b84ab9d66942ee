"""Celery tasks, thin: each deserialises an id, calls the logic in `pipelines.cases`, `.review` or `.mlops`, and
retries with backoff. `app` is the one Celery app; `worker` starts a worker or beat. May import every other
pipelines sub-package; nothing imports it except the API's enqueue helpers and the CLI.
"""

# The worker imports these through the app's `include` (Celery's loader); tests call
# `celery_app.loader.import_default_modules()` to register them in-process.
TASK_MODULES = (
    "pipelines.tasks.analysis",
    "pipelines.tasks.review",
    "pipelines.tasks.stale_cases",
    "pipelines.tasks.training",
)
