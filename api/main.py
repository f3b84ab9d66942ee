"""Builds the FastAPI app: routers, error handlers, metrics, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import OperationalError

from api import docs_page, health
from api.analyses.router import router as analyses_router
from api.body_limit import MULTIPART_SLACK, install_body_limit
from api.datasets.router import router as datasets_router
from api.errors import install_error_handlers
from api.header_auth import HeaderAuth
from api.metrics import DriftCollector, Metrics
from api.models.router import router as models_router
from api.monitoring.router import router as monitoring_router
from api.rate_limit import build_rate_limiter
from api.review.page import router as review_page_router
from api.review.router import router as review_router
from api.security_headers import SecurityHeaders
from api.training_runs.router import router as training_runs_router
from infra.db.migrate import upgrade
from infra.logging_config import REQUEST_ID_HEADER, install_redaction, valid_request_id_or_new
from infra.settings import Settings, get_settings
from pipelines.resources import Resources, serving_resources

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> FastAPI:
    settings = settings or get_settings()
    resources = resources or serving_resources(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.var_path.mkdir(parents=True, exist_ok=True)
        try:
            upgrade(settings.sqlalchemy_url)
        except OperationalError as exc:  # start anyway: requests answer 503 and /readyz says why
            log.error("database unavailable at start-up, schema not checked: %s", type(exc.orig).__name__)
        yield

    app = FastAPI(
        title="skintrouble",
        version="0.1.0",
        description="Acne analysis: quality gate, lesion detector, review queue and model lifecycle.",
        lifespan=lifespan,
        docs_url=None,  # served by api.docs_page from installed assets (offline, under a CSP)
        redoc_url=None,
    )
    install_redaction()
    app.state.resources = resources
    app.state.metrics = Metrics()
    app.state.rate_limiter = build_rate_limiter(settings.rate_limit_per_minute, settings.redis_url)
    app.state.anonymous_rate_limiter = build_rate_limiter(
        settings.rate_limit_unauthenticated_per_minute, settings.redis_url, prefix="skintrouble:ratelimit:anon:"
    )
    install_error_handlers(app)
    app.middleware("http")(app.state.metrics.middleware)
    install_body_limit(app, settings.max_upload_bytes + MULTIPART_SLACK)
    app.add_middleware(HeaderAuth)  # the key, from the headers, before any body is read
    app.add_middleware(SecurityHeaders)  # outermost but CORS: every answer, whoever wrote it
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Idempotency-Key", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
        )
    # outermost: the request id is set before anything else logs, and every answer carries it
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        validator=None,  # replaced, not refused: the transformer swaps a bad or oversize id for a new one
        transformer=valid_request_id_or_new,
    )
    app.include_router(health.router)
    app.include_router(docs_page.router)
    app.include_router(analyses_router)
    app.include_router(review_router)
    app.include_router(review_page_router)
    app.include_router(models_router)
    app.include_router(training_runs_router)
    app.include_router(datasets_router)
    app.include_router(monitoring_router)
    app.state.metrics.registry.register(
        DriftCollector(lambda: settings.sqlalchemy_url, min_cases=settings.metrics_min_cases)
    )
    return app
