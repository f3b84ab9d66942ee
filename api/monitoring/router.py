"""Monitoring summary for ML engineers, and Prometheus gauges computed from the same figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import MlEngineer, UowDep
from infra.db.engine import session_scope
from infra.db.repositories import cases as cases_repo
from pipelines import monitoring

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])


@router.get("/summary", responses={401: {"description": "No key"}, 403: {"description": "Wrong role"}})
def summary(principal: MlEngineer, uow: UowDep, days: Annotated[int, Query(ge=1, le=90)] = 7) -> dict[str, Any]:
    cases = cases_repo.list_since(session=uow.session, since=monitoring.window_start(days))
    return monitoring.summarise(cases)


class DriftCollector(Collector):
    """Today's figures as gauges, read from the database when Prometheus scrapes."""

    def __init__(self, database_url: Callable[[], str]) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with session_scope(self.database_url()) as session:
                figures = monitoring.summarise(cases_repo.list_since(session=session, since=monitoring.window_start(1)))
        except Exception:
            return
        days = figures["days"]
        today = days[-1] if days else None
        rejections = GaugeMetricFamily(
            "skintrouble_rejection_rate", "Share of analyses rejected, by retake code (24 h)", labels=["code"]
        )
        review = GaugeMetricFamily("skintrouble_review_rate", "Share of accepted analyses queued for review (24 h)")
        grades = GaugeMetricFamily("skintrouble_grade_share", "Grade mix of accepted analyses (24 h)", labels=["grade"])
        confidence = GaugeMetricFamily(
            "skintrouble_findings_by_confidence", "Findings per confidence bucket (24 h)", labels=["le"]
        )
        analyses = GaugeMetricFamily("skintrouble_analyses_24h", "Analyses in the last 24 h")
        if today is not None:
            analyses.add_metric([], today["analyses"])
            rejections.add_metric(["any"], today["rejection_rate"])
            for code, rate in today["rejections_by_code"].items():
                rejections.add_metric([code], rate)
            review.add_metric([], today["review_rate"])
            for grade, share in today["grade_mix"].items():
                grades.add_metric([grade], share)
            for bucket, n in today["confidence_histogram"].items():
                confidence.add_metric([bucket.removeprefix("<=")], n)
        yield from (analyses, rejections, review, grades, confidence)
