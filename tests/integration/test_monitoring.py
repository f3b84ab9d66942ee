"""Drift monitoring from stored cases, and the beat trigger for retraining."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infra.db.models import Case, Label, TrainingRun
from infra.db.repositories.api_keys import create_key
from infra.db.unit_of_work import session_scope
from infra.settings import Settings, get_settings


def add_cases(url: str) -> None:
    with session_scope(url) as session:
        session.add_all(
            [
                Case(status="rejected", width=10, height=10, quality={"retake_codes": ["too_dark"]}),
                Case(status="rejected", width=10, height=10, quality={"retake_codes": ["blurry", "too_dark"]}),
                Case(
                    status="done",
                    width=10,
                    height=10,
                    grade=0,
                    review_queued=True,
                    lesion_count=1,
                    findings=[{"label": "lesion", "confidence": 0.15, "box": [0, 0, 1, 1]}],
                ),
                Case(
                    status="done",
                    width=10,
                    height=10,
                    grade=2,
                    review_queued=False,
                    lesion_count=2,
                    findings=[
                        {"label": "lesion", "confidence": 0.95, "box": [0, 0, 1, 1]},
                        {"label": "lesion", "confidence": 0.55, "box": [2, 2, 3, 3]},
                    ],
                ),
                Case(status="pending", width=10, height=10),
                Case(status="failed", width=10, height=10),
            ]
        )


def test_summary_and_prometheus_gauges(settings: Settings) -> None:
    from api.main import create_app

    app = create_app(settings.model_copy(update={"metrics_min_cases": 2}))  # the fixture has 4 analyses, 2 accepted
    with TestClient(app) as client:
        add_cases(settings.sqlalchemy_url)
        with session_scope(settings.sqlalchemy_url) as session:
            _, ml = create_key(session=session, role="ml-engineer", name="ml")
            _, derm = create_key(session=session, role="dermatologist", name="d")
        day = client.get("/v1/monitoring/summary?days=7", headers={"X-API-Key": ml}).json()["days"][-1]
        assert day["analyses"] == 4 and day["failed"] == 1 and day["rejection_rate"] == 0.5
        assert day["rejections_by_code"] == {"too_dark": 0.5, "blurry": 0.25}
        assert day["review_rate"] == 0.5
        assert day["grade_mix"] == {"mild": 0.5, "moderate": 0.0, "severe": 0.5, "very_severe": 0.0}
        assert day["confidence_histogram"]["<=0.2"] == 1 and day["confidence_histogram"]["<=1.0"] == 1
        assert client.get("/v1/monitoring/summary", headers={"X-API-Key": derm}).status_code == 403
        metrics = client.get("/metrics").text
        assert 'skintrouble_rejection_rate{code="too_dark"} 0.5' in metrics
        assert "skintrouble_review_rate 0.5" in metrics
        assert 'skintrouble_grade_share{grade="severe"} 0.5' in metrics
        assert 'skintrouble_findings_by_confidence{le="0.2"} 1.0' in metrics
        assert "skintrouble_analyses_24h 4.0" in metrics


def test_beat_starts_a_retraining_once_enough_labels_arrived(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.db.migrate import upgrade
    from pipelines.tasks import training

    monkeypatch.setenv("SKINTROUBLE_RETRAIN_MIN_NEW_LABELS", "2")
    get_settings.cache_clear()
    current = get_settings()
    monkeypatch.setattr(training, "get_resources", lambda: type("R", (), {"settings": current})())
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr("pipelines.tasks.app.enqueue_task", lambda name, *args: sent.append((name, args)))
    upgrade(current.sqlalchemy_url)
    with session_scope(current.sqlalchemy_url) as session:
        case = Case(status="done", width=10, height=10)
        session.add(case)
        session.flush()
        session.add(Label(case_id=case.id, reviewer_id="r1", verdict="confirmed", grade=0, boxes=[]))
    assert training.maybe_retrain() is None and sent == []  # one label is not enough
    with session_scope(current.sqlalchemy_url) as session:
        session.add(Label(case_id=case.id, reviewer_id="r2", verdict="confirmed", grade=0, boxes=[]))
    run_id = training.maybe_retrain()
    assert run_id is not None and sent == [("training.retrain", (run_id,))]
    with session_scope(current.sqlalchemy_url) as session:
        assert session.get(TrainingRun, run_id).status == "queued"
    assert training.maybe_retrain() is None  # a run is already queued


def samples(exposition: str) -> str:
    """The sample lines of a Prometheus exposition (HELP/TYPE comments name every family, even empty ones)."""
    return "\n".join(line for line in exposition.splitlines() if not line.startswith("#"))


def test_metrics_need_the_scrape_token_and_hold_back_small_groups(settings: Settings) -> None:
    """/metrics answers only with the bearer token; gauges over fewer than k cases are not published at all."""
    from api.main import create_app

    guarded = settings.model_copy(update={"metrics_token": "s3cret-scrape", "metrics_min_cases": 3})
    with TestClient(create_app(guarded)) as client:
        add_cases(settings.sqlalchemy_url)  # 4 analyses (>= 3), of which 2 accepted (< 3)
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_metrics_token"
        text = samples(client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"}).text)
        assert "skintrouble_analyses_24h 4.0" in text and 'skintrouble_rejection_rate{code="too_dark"} 0.5' in text
        assert "skintrouble_grade_share" not in text and "skintrouble_review_rate" not in text
        assert "skintrouble_findings_by_confidence" not in text
    with TestClient(create_app(settings)) as client:  # default k = 10: nothing clinical from 4 analyses
        client.get("/healthz")
        text = samples(client.get("/metrics").text)
        assert "skintrouble_analyses_24h" not in text and "skintrouble_rejection_rate" not in text
        assert "skintrouble_http_requests_total" in text  # the operational series stay


def test_production_refuses_to_start_without_a_scrape_token() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(
            environment="production",
            database_url="postgresql+psycopg://x@h/db",
            redis_url="redis://h:6379/0",
            mlflow_tracking_uri="http://h:5000",
            metrics_token=None,
        )
