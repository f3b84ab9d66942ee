"""Monitoring summary for ML engineers, and Prometheus gauges computed from the same figures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import MlEngineer, UowDep
from infra.db.engine import session_scope
from infra.db.repositories import cases as cases_repo
from pipelines.mlops import monitoring

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])


@router.get("/summary", responses={401: {"description": "No key"}, 403: {"description": "Wrong role"}})
def summary(principal: MlEngineer, uow: UowDep, days: Annotated[int, Query(ge=1, le=90)] = 7) -> dict[str, Any]:
    cases = cases_repo.list_since(session=uow.session, since=monitoring.window_start(days))
    return monitoring.summarise(cases)


class DriftCollector(Collector):
    """The last 24 h as gauges, computed from the database when Prometheus scrapes.

    Why from the database rather than counters bumped at analysis time: every API process then reports the
    same figures (async analyses finish in workers, which Prometheus does not scrape), a restart loses
    nothing, and the figures match `GET /v1/monitoring/summary`. Cached for `ttl` seconds so that several
    scrapers or a short scrape interval cost one query.
    """

    def __init__(self, database_url: Callable[[], str], ttl: float = 30.0, min_cases: int = 10) -> None:
        self.database_url = database_url
        self.ttl = ttl
        self.min_cases = min_cases  # a figure computed over fewer cases than this is held back
        self._cached: tuple[float, dict[str, Any] | None] = (-float("inf"), None)

    def _last_day(self) -> dict[str, Any] | None:
        taken, figures = self._cached
        if time.monotonic() - taken >= self.ttl:
            with session_scope(self.database_url()) as session:
                cases = cases_repo.list_since(session=session, since=monitoring.window_start(1))
                days = monitoring.summarise(cases, bucket=lambda _: "24h")["days"]
            figures = days[0] if days else None
            self._cached = (time.monotonic(), figures)
        return figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            today = self._last_day()
        except Exception:  # a scrape must never fail because the database hiccups
            return
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
            # k-anonymity: a gauge is published only when the cases it is computed over number at least min_cases
            # (rates over all analyses; grade mix, review rate and confidence over the accepted ones)
            enough_analyses = today["analyses"] >= self.min_cases
            enough_accepted = today["accepted"] >= self.min_cases
            if enough_analyses:
                analyses.add_metric([], today["analyses"])
                rejections.add_metric(["any"], today["rejection_rate"])
                for code, rate in today["rejections_by_code"].items():
                    rejections.add_metric([code], rate)
            if enough_accepted:
                review.add_metric([], today["review_rate"])
                for grade, share in today["grade_mix"].items():
                    grades.add_metric([grade], share)
                for bucket, n in today["confidence_histogram"].items():
                    confidence.add_metric([bucket.removeprefix("<=")], n)
        yield from (analyses, rejections, review, grades, confidence)
