"""Logs: one JSON object per line, stamped with the request id (and Celery task id), never carrying API keys,
passwords in URLs or photo bytes.

Redaction happens when a record is created (a log-record factory), so every handler — ours, uvicorn's,
pytest's — only ever sees the cleaned message. Bytes arguments are replaced by their length; nothing in the
code base logs request bodies, and this makes an accidental `log.debug("%r", body)` harmless too. The JSON
formatter cleans again what the factory cannot see: `extra=` fields and the freshly formatted traceback.

The request id comes from asgi-correlation-id's middleware (a contextvar set per request, `X-Request-ID` in and
out); a task enqueued during a request carries it in a message header, so the worker's lines name it as well.
Processes call `configure_logging` at start (`serve` through uvicorn's `log_config`, workers on Celery's
`setup_logging` signal); importing this module configures nothing.
"""

from __future__ import annotations

import logging
import logging.config
import re
import threading
import uuid
from typing import Any

from asgi_correlation_id import correlation_id
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# st_ + url-safe token (api_keys.create_key); anything looking like one is masked, keeping only the prefix
API_KEY_PATTERN = re.compile(r"\bst_[A-Za-z0-9_\-]{8,}")
# scheme://user:password@host -> scheme://user:***@host
URL_PASSWORD_PATTERN = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@")

_install_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    text = API_KEY_PATTERN.sub("st_[REDACTED]", text)
    return URL_PASSWORD_PATTERN.sub(r"\g<head>***@", text)


def _safe_arg(value: Any, depth: int = 0) -> Any:
    """Bytes become their length, strings are masked; containers are cleaned one level at a time."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    if depth < 3 and isinstance(value, list | tuple):
        return type(value)(_safe_arg(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return {k: _safe_arg(v, depth + 1) for k, v in value.items()}
    text = str(value)  # exceptions and other objects: mask only if their text carries a secret
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the template and each argument separately, keeping the args' shape (uvicorn's formatters unpack them)."""
    record.msg = _safe_arg(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_safe_arg(a) for a in args)
    elif isinstance(args, dict):
        record.args = {k: _safe_arg(v) for k, v in args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


class RedactingFilter(logging.Filter):
    """For handlers configured elsewhere (dictConfig); the factory below already covers records made here."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Wrap the process's log-record factory once; idempotent and safe to call from every `create_app`."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True


# --- request ids and JSON lines --------------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-ID"
# what a caller or proxy may hand us: short, printable, no spaces or quotes (it lands in every log line)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")


def valid_request_id_or_new(value: str) -> str:
    """Keep a caller's id when it is 8-64 plain characters (nginx's `$request_id`, a UUID); otherwise make one."""
    return value if _REQUEST_ID.fullmatch(value) else uuid.uuid4().hex


def _current_task_request() -> Any:
    from celery import current_task  # a proxy: None outside a task

    return getattr(current_task, "request", None)


class ContextFilter(logging.Filter):
    """Stamp each record with `request_id` and `task_id` (None when there is none), whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = _current_task_request()
        request_id = correlation_id.get()
        if request_id is None and task is not None:  # the header the publisher added (carry_request_id):
            # a worker lifts message headers onto the request, an eager run keeps them under `headers`
            request_id = getattr(task, "request_id", None) or (getattr(task, "headers", None) or {}).get("request_id")
        record.request_id = request_id
        record.task_id = getattr(task, "id", None) if task is not None else None
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, cleaning every field it adds (extras, the traceback it formats itself)."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: _safe_arg(value) for key, value in log_data.items()}


JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s"


def json_formatter() -> RedactingJsonFormatter:
    return RedactingJsonFormatter(
        JSON_FIELDS,
        rename_fields={"asctime": "time", "levelname": "level"},
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI-coloured copy of the message
    )


def log_config(level: str | int = "INFO") -> dict[str, Any]:
    """A `dictConfig` dict: one JSON handler on stderr at the root; uvicorn's and Celery's loggers propagate to it."""
    level = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["context"],
                "formatter": "json",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery")
        },
    }


def configure_logging(level: str | int = "INFO") -> None:
    """Redaction plus JSON lines on stderr for this process."""
    install_redaction()
    logging.config.dictConfig(log_config(level))


def carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery `before_task_publish` receiver: a task enqueued while serving a request carries its id."""
    request_id = correlation_id.get()
    if headers is not None and request_id:
        headers.setdefault("request_id", request_id)
