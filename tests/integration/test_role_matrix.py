"""Every endpoint against every role (none, app, dermatologist, ml-engineer), built from the app's own routes:
an endpoint added without an entry here fails this test."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from infra.db.repositories.api_keys import create_key
from infra.db.unit_of_work import session_scope
from infra.settings import Settings

ROLES = ("app", "dermatologist", "ml-engineer")
PUBLIC = {"/healthz", "/readyz", "/metrics", "/review", "/review/{asset}", "/docs", "/redoc", "/openapi.json"}
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/analyses"): {"app"},
    ("GET", "/v1/analyses/{case_id}"): {"app", "dermatologist"},
    ("GET", "/v1/analyses/{case_id}/overlay.png"): {"app", "dermatologist"},
    ("DELETE", "/v1/analyses/{case_id}"): {"app"},
    ("POST", "/v1/review/claim"): {"dermatologist"},
    ("GET", "/v1/review/cases/{case_id}"): {"dermatologist"},
    ("GET", "/v1/review/cases/{case_id}/photo.jpg"): {"dermatologist"},
    ("POST", "/v1/review/cases/{case_id}/labels"): {"dermatologist"},
    ("POST", "/v1/review/cases/{case_id}/skip"): {"dermatologist"},
    ("GET", "/v1/review/stats"): {"dermatologist", "ml-engineer"},
    ("GET", "/v1/review/export"): {"dermatologist", "ml-engineer"},
    ("GET", "/v1/review/me"): {"dermatologist"},
    ("GET", "/v1/review/taxonomy"): {"dermatologist", "ml-engineer"},
    ("GET", "/v1/review/cases/{case_id}/heatmap.png"): {"dermatologist"},
    ("GET", "/v1/review/suspects"): {"dermatologist", "ml-engineer"},
    ("POST", "/v1/review/suspects/{case_id}/route"): {"dermatologist", "ml-engineer"},
    ("GET", "/v1/models"): {"ml-engineer"},
    ("POST", "/v1/models/{version}/promote"): {"ml-engineer"},
    ("POST", "/v1/models/rollback"): {"ml-engineer"},
    ("POST", "/v1/training-runs"): {"ml-engineer"},
    ("GET", "/v1/training-runs/{run_id}"): {"ml-engineer"},
    ("GET", "/v1/monitoring/summary"): {"ml-engineer"},
    ("GET", "/v1/datasets"): {"ml-engineer"},
}


def test_every_route_admits_exactly_its_roles(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.main import create_app
    from pipelines.tasks import app as celery_module

    monkeypatch.setattr(celery_module.celery_app, "send_task", lambda *a, **k: None)  # no training actually starts
    app = create_app(settings)
    # the OpenAPI document lists every routed operation (FastAPI nests included routers in app.routes)
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in PUBLIC
        for method in operations
    }
    assert routes == set(EXPECTED), f"unlisted: {routes - set(EXPECTED)}, gone: {set(EXPECTED) - routes}"
    with TestClient(app) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            keys = {role: create_key(session=session, role=role, name=role)[1] for role in ROLES}
        for method, path in sorted(EXPECTED):
            url = re.sub(r"\{[^}]+\}", "0" * 32, path)
            for role in (None, *ROLES):
                headers = {"X-API-Key": keys[role]} if role else {}
                response = client.request(method, url, headers=headers, json={} if method == "POST" else None)
                body = (
                    response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
                )
                if role is None:
                    assert response.status_code == 401, (method, path)
                    assert body["error"]["code"] == "missing_api_key"
                elif role in EXPECTED[(method, path)]:
                    assert response.status_code not in (401, 403), (method, path, role, response.text)
                    assert response.status_code < 500, (method, path, role, response.text)
                else:
                    assert response.status_code == 403, (method, path, role, response.status_code)
                    assert body["error"]["code"] == "forbidden_role"
