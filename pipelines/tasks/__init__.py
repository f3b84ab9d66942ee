"""Celery tasks: thin. Each deserialises an id, calls the logic elsewhere, and retries with backoff."""

import importlib

TASK_MODULES = (
    "pipelines.tasks.analysis",
    "pipelines.tasks.review",
    "pipelines.tasks.stale_cases",
    "pipelines.tasks.training",
)


def load_all() -> None:
    """Import every task module so the worker knows all task names."""
    for name in TASK_MODULES:
        importlib.import_module(name)
