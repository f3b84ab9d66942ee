"""Authenticate from the headers before anything reads the body, and rate-limit requests without a valid key.

FastAPI parses a multipart body before it resolves a route's dependencies, so a key checked in a dependency is
checked only after the whole upload arrived (18 MB read for a 401). This pure ASGI middleware runs first: every
`/v1` request needs a valid `X-API-Key`, looked up from the headers alone; otherwise it answers 401 at once and
never calls `receive`. Requests without a valid key are counted per client address (their own bucket,
`rate_limit_unauthenticated_per_minute`); past the limit they get 429 with `Retry-After` and `RateLimit-*`.
The principal found is handed to the route (`request.state.principal`), so the key is looked up once.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Principal, principal_from_key
from api.errors import ApiError, error_response
from infra.db.repositories import api_keys as keys_repo
from infra.db.unit_of_work import session_scope

log = logging.getLogger(__name__)
PROTECTED_PREFIX = "/v1/"


def _lookup(database_url: str, raw_key: str) -> Principal | None:
    with session_scope(database_url) as session:
        key = keys_repo.find_active(session=session, raw_key=raw_key)
        return None if key is None else principal_from_key(key)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class HeaderAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        raw = _header(scope, b"x-api-key")
        try:
            principal = await run_in_threadpool(_lookup, state.resources.settings.sqlalchemy_url, raw) if raw else None
        except OperationalError as exc:
            log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
            response = error_response(
                503, "database_unavailable", "The database is unavailable; try again shortly.", {"Retry-After": "5"}
            )
            await response(scope, receive, send)
            return
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        error = ApiError(401, "missing_api_key", "Send your API key in the X-API-Key header.")
        if raw:
            error = ApiError(401, "invalid_api_key", "The API key is not valid.")
        limiter = getattr(state, "anonymous_rate_limiter", None)
        if limiter is not None:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            try:
                limiter.check(f"anon:{address}", message="Too many requests without a valid API key; slow down.")
            except ApiError as limited:
                error = limited
        response = error_response(error.status, error.code, error.message, error.headers, **error.extra)
        await response(scope, receive, send)
