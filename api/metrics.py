"""Prometheus metrics, one registry per app so that tests can build many apps: HTTP counters and latency, and
the drift gauges computed from the database at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from infra.db.repositories import cases as cases_repo
from infra.db.unit_of_work import session_scope
from pipelines.mlops import monitoring


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "skintrouble_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "skintrouble_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, path, str(response.status_code)).inc()
        self.latency.labels(request.method, path).observe(time.perf_counter() - start)
        return response


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
