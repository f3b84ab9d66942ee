"""Monitoring summary for ML engineers (the same figures feed the Prometheus gauges of `api.metrics`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import MlEngineer, UowDep
from infra.db.repositories import cases as cases_repo
from pipelines.mlops import monitoring

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])


@router.get("/summary", responses={401: {"description": "No key"}, 403: {"description": "Wrong role"}})
def summary(principal: MlEngineer, uow: UowDep, days: Annotated[int, Query(ge=1, le=90)] = 7) -> dict[str, Any]:
    cases = cases_repo.list_since(session=uow.session, since=monitoring.window_start(days))
    return monitoring.summarise(cases)
