"""Drift signals from stored cases: rejections per retake code, confidence distribution, review rate, grade mix.

Computed from the database (the source of truth), so every API process reports the same figures and a
restart loses nothing. Used by `GET /v1/monitoring/summary` and by the Prometheus collector at scrape time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.grading import GRADE_LABELS
from infra.db.models import Case

CONFIDENCE_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _day(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).date().isoformat()


def summarise(cases: Iterable[Case], bucket: Callable[[datetime], str] = _day) -> dict[str, Any]:
    """Figures per day (or per any `bucket` of the creation time: the gauges use one bucket for 24 h)."""
    per_day: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "analyses": 0,
            "rejected": 0,
            "failed": 0,
            "retake_codes": Counter(),
            "reviewed": 0,
            "grades": Counter(),
            "confidence_histogram": [0] * len(CONFIDENCE_BUCKETS),
        }
    )
    for case in cases:
        day = per_day[bucket(case.created_at)]
        if case.status == "failed":  # the pipeline broke, not the photo or the model: counted apart
            day["failed"] += 1
        if case.status not in ("done", "rejected"):
            continue
        day["analyses"] += 1
        if case.status == "rejected":
            day["rejected"] += 1
            day["retake_codes"].update((case.quality or {}).get("retake_codes", []))
            continue
        day["reviewed"] += int(bool(case.review_queued))
        if case.grade is not None:
            day["grades"][GRADE_LABELS[case.grade]] += 1
        for finding in case.findings or []:
            conf = float(finding.get("confidence", 0.0))
            index = next(i for i, edge in enumerate(CONFIDENCE_BUCKETS) if conf <= edge or edge == 1.0)
            day["confidence_histogram"][index] += 1
    days = []
    for date in sorted(per_day):
        d = per_day[date]
        accepted = d["analyses"] - d["rejected"]
        days.append(
            {
                "date": date,
                "analyses": d["analyses"],
                "accepted": accepted,
                "failed": d["failed"],
                "rejection_rate": round(d["rejected"] / d["analyses"], 4) if d["analyses"] else 0.0,
                "rejections_by_code": {code: round(n / d["analyses"], 4) for code, n in d["retake_codes"].items()},
                "review_rate": round(d["reviewed"] / accepted, 4) if accepted else 0.0,
                "grade_mix": {g: round(d["grades"][g] / accepted, 4) if accepted else 0.0 for g in GRADE_LABELS},
                "confidence_histogram": dict(
                    zip([f"<={e}" for e in CONFIDENCE_BUCKETS], d["confidence_histogram"], strict=True)
                ),
            }
        )
    return {"days": days, "confidence_buckets": list(CONFIDENCE_BUCKETS)}


def window_start(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
