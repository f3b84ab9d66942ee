"""Who may read /metrics: scrapers holding the bearer token `SKINTROUBLE_METRICS_TOKEN`.

Production refuses to start without a token (infra/settings.py); in development and tests an unset token leaves
/metrics open to local tools. Clinical aggregates are thinned in any case (DriftCollector's `min_cases`).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from api.errors import ApiError
from infra.settings import Settings


def authorize_scrape(request: Request, settings: Settings) -> None:
    token = settings.metrics_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "invalid_metrics_token",
            "Send the scrape token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
