"""Domain refusals: a stable `code` and a message for people, no transport status.

Each face maps them on its own: `api/errors.py` to an HTTP status and the one JSON error body, the CLI to a
printed line and an exit code. New refusals subclass `Refused` and get a status in `api.errors.REFUSAL_STATUS`.
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """A request the domain will not carry out, for a reason the caller can act on."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
