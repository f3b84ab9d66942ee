"""Review routing: which cases go to dermatologists, why, and in what order."""

from __future__ import annotations

import pytest

from detector.findings import Detection, Finding
from detector.grading import grade_from_count
from pipelines.cases.routing import decide, stable_fraction
from quality_gate import QualityReport
from tests.conftest import routing_policy

BANDS = (5, 20, 50)
NO_AUDIT = routing_policy(audit_rate=0.0, double_rate=0.0)


def detection(confidences: list[float], count: int | None = None, uncertainty: float = 0.0) -> Detection:
    findings = [Finding("lesion", c, (10.0 * i, 10.0, 10.0 * i + 8, 18.0)) for i, c in enumerate(confidences)]
    n = count if count is not None else sum(c >= 0.25 for c in confidences)
    return Detection(findings, n, grade_from_count(n, BANDS), uncertainty, "v1", 0.25)


def quality(margin: float = 0.8) -> QualityReport:
    return QualityReport(accepted=True, retake_codes=[], hints=[], measures={}, margin=margin)


def test_confident_case_far_from_boundaries_is_not_queued() -> None:
    decision = decide(case_id="a", detection=detection([0.9] * 12), quality=quality(), bands=BANDS, policy=NO_AUDIT)
    assert not decision.queued and decision.reason is None


@pytest.mark.parametrize(
    ("det", "q", "reason"),
    [
        (detection([0.3, 0.35, 0.4, 0.3] + [0.9] * 8), quality(), "uncertain_findings"),
        (detection([0.9] * 12, uncertainty=0.6), quality(), "high_uncertainty"),
        (detection([0.9] * 12), quality(margin=0.02), "borderline_quality"),
        (detection([0.9] * 6), quality(), "near_grade_boundary"),
    ],
)
def test_each_reason_queues_the_case(det: Detection, q: QualityReport, reason: str) -> None:
    decision = decide(case_id="b", detection=det, quality=q, bands=BANDS, policy=NO_AUDIT)
    assert decision.queued
    assert reason in (decision.reason or "").split(",")


def test_audit_sample_catches_confident_cases_at_the_configured_rate() -> None:
    policy = routing_policy(audit_rate=0.2, double_rate=0.0)
    queued = [
        decide(case_id=f"case-{i}", detection=detection([0.9] * 12), quality=quality(), bands=BANDS, policy=policy)
        for i in range(2000)
    ]
    share = sum(d.queued for d in queued) / len(queued)
    assert 0.16 < share < 0.24
    assert {d.reason for d in queued if d.queued} == {"audit_sample"}


def test_decision_is_deterministic_per_case() -> None:
    policy = routing_policy(audit_rate=0.5, double_rate=0.5)
    first = decide(case_id="same", detection=detection([0.9] * 12), quality=quality(), bands=BANDS, policy=policy)
    again = decide(case_id="same", detection=detection([0.9] * 12), quality=quality(), bands=BANDS, policy=policy)
    assert first == again
    assert 0.0 <= stable_fraction("same", "audit") < 1.0


def test_severe_cases_come_before_mild_ones() -> None:
    mild = decide(case_id="m", detection=detection([0.3] * 3), quality=quality(), bands=BANDS, policy=NO_AUDIT)
    severe = decide(
        case_id="s", detection=detection([0.3] * 3, count=60), quality=quality(), bands=BANDS, policy=NO_AUDIT
    )
    assert mild.queued and severe.queued
    assert severe.priority > mild.priority


def test_double_review_share() -> None:
    policy = routing_policy(audit_rate=1.0, double_rate=0.5)
    decisions = [
        decide(case_id=str(i), detection=detection([0.9] * 12), quality=quality(), bands=BANDS, policy=policy)
        for i in range(400)
    ]
    doubles = sum(d.reviews_required == 2 for d in decisions) / len(decisions)
    assert 0.4 < doubles < 0.6
