"""The one Celery app: Redis broker in production, SQLAlchemy/SQLite transport as the embedded default.

Configuration is a promise (`add_defaults` with a callable): settings are read when the app is first used,
not when this module is imported. Start a worker with `skintrouble worker` or
`celery -A pipelines.tasks.app worker -Q analysis,review,training`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import before_task_publish, setup_logging
from kombu import Queue

from infra.logging_config import carry_request_id, configure_logging
from infra.settings import get_settings
from pipelines.tasks import TASK_MODULES

QUEUES = ("analysis", "review", "training")


def build_config() -> dict[str, Any]:
    settings = get_settings()
    settings.var_path.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "task_always_eager": settings.celery_always_eager,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "analysis",
        "task_routes": {
            "analysis.*": {"queue": "analysis"},
            "review.*": {"queue": "review"},
            "training.*": {"queue": "training"},
        },
        "result_expires": 24 * 3600,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "retraining-check": {
                "task": "training.maybe_retrain",
                "schedule": settings.retrain_check_seconds,
            },
            "review-leases": {"task": "review.expire_leases", "schedule": 60.0},
            # windows overlap (2 h every hour): a case queued twice keeps its one row
            "missed-lesions": {"task": "review.sweep_missed_lesions", "schedule": 3600.0, "args": (7200.0,)},
            "suspect-labels": {"task": "review.route_suspects", "schedule": 3600.0},
            "stale-cases": {"task": "analysis.requeue_stale", "schedule": settings.stale_case_check_seconds},
            # erasure's safety net: copies of erased cases a missed purge message left behind
            "erasure-purge": {"task": "training.purge_erased", "schedule": 3600.0},
        },
    }
    if settings.redis_url:
        # a redelivered message must wait out a training job; analyses finish in seconds
        config["broker_transport_options"] = {
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            "max_retries": 1,
        }
        config["redis_socket_connect_timeout"] = 2
        config["redis_socket_timeout"] = 5
        config["result_backend_transport_options"] = {"retry_policy": {"timeout": 2.0, "max_retries": 1}}
    return config


celery_app = Celery("skintrouble", include=list(TASK_MODULES))
celery_app.add_defaults(build_config)
# workers and beat log JSON lines with the task id; tasks sent during a request carry its request id
before_task_publish.connect(carry_request_id, weak=False)


@setup_logging.connect(weak=False)
def _json_logging(loglevel: str | int | None = None, **_: Any) -> None:
    configure_logging(loglevel or "INFO")


def enqueue_task(name: str, *args: Any, **options: Any) -> None:
    """Send a task by name with a short broker timeout, so a dead broker fails fast (503) instead of hanging."""
    celery_app.send_task(
        name,
        args=list(args),
        retry=True,
        retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
        **options,
    )
