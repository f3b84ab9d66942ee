"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ResourcesDep
from api.metrics_auth import authorize_scrape
from infra.db.engine import get_engine
from pipelines.tasks.app import celery_app

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_database(url: str) -> str:
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    return "ok"


def _check_broker() -> str:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


@router.get("/readyz", summary="Database, broker and model are usable")
async def readyz(resources: ResourcesDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    for name, probe in (
        ("database", lambda: _check_database(resources.settings.sqlalchemy_url)),
        ("broker", _check_broker),
        ("model", lambda: resources.models.get().version),
    ):
        try:
            checks[name] = await run_in_threadpool(probe)
        except Exception as exc:
            checks[name] = f"unavailable ({type(exc).__name__})"
    ready = all(not str(v).startswith("unavailable") for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer scrape token when configured)",
    response_class=Response,
    responses={401: {"description": "Missing or wrong scrape token"}},
)
def metrics(request: Request, resources: ResourcesDep) -> Response:
    authorize_scrape(request, resources.settings)
    return request.app.state.metrics.render()
