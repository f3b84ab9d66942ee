"""Logs never carry API keys, passwords in URLs or photo bytes.

Redaction happens when a record is created (a log-record factory), so every handler — ours, uvicorn's,
pytest's — only ever sees the cleaned message. Bytes arguments are replaced by their length; nothing in the
code base logs request bodies, and this makes an accidental `log.debug("%r", body)` harmless too.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

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
