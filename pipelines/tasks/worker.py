"""Start a worker or the beat scheduler on the configured broker (used by `skintrouble worker|beat`)."""

from __future__ import annotations

from pipelines.tasks.app import celery_app


def run_worker(*, queues: list[str], concurrency: int = 1, loglevel: str = "INFO") -> None:
    celery_app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            f"--hostname={'-'.join(queues)}@%h",  # `up` runs one worker per queue group on one host
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def run_beat(loglevel: str = "INFO") -> None:
    from infra.settings import get_settings

    schedule = get_settings().var_path / "celerybeat-schedule"
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])
