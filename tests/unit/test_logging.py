"""Worker log lines name their Celery task, and a task sent during a request names that request."""

from __future__ import annotations

import io
import json
import logging

from asgi_correlation_id import correlation_id
from celery import Celery

from infra.logging_config import ContextFilter, carry_request_id, json_formatter


def _capture(logger: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return stream


def test_task_lines_carry_the_task_id_and_the_publishing_request_id() -> None:
    app = Celery("logging-test", set_as_current=False)
    app.conf.task_always_eager = True
    log = logging.getLogger("tests.task_logging")
    stream = _capture(log)

    @app.task(name="tests.log_something")
    def log_something() -> None:
        log.info("inside the task")

    try:
        log.info("outside any task")
        result = log_something.apply(task_id="task-0001", headers={"request_id": "req-from-publisher"})
        assert result.successful()
    finally:
        log.handlers.clear()
        log.propagate = True
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert outside["task_id"] is None and outside["request_id"] is None
    assert inside["task_id"] == "task-0001" and inside["request_id"] == "req-from-publisher"


def test_publishing_during_a_request_adds_its_id_to_the_message_headers() -> None:
    headers: dict[str, str] = {}
    carry_request_id(headers=headers)
    assert headers == {}  # no request: nothing to carry
    token = correlation_id.set("0123456789abcdef0123456789abcdef")
    try:
        carry_request_id(headers=headers)
    finally:
        correlation_id.reset(token)
    assert headers == {"request_id": "0123456789abcdef0123456789abcdef"}
