"""Headers on every answer (nosniff, no-referrer, no-store on case data) and the offline API docs' CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.main import create_app
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from tests.conftest import encode, skin_photo


def test_every_answer_carries_the_headers_and_case_data_is_never_cached(settings: Settings) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 400_000})
    with TestClient(create_app(small)) as client:
        with session_scope(small.sqlalchemy_url) as session:
            _, key = api_keys.create_key(session=session, role="app", name="phone")
        app = {"X-API-Key": key}
        photo = encode(skin_photo(640, 640, seed=3))
        analysis = client.post("/v1/analyses", headers=app, files={"image": ("p.jpg", photo, "image/jpeg")})
        assert analysis.status_code == 200, analysis.text
        case_id = analysis.json()["id"]
        answers = {
            "analysis": analysis,
            "read": client.get(f"/v1/analyses/{case_id}", headers=app),
            "overlay": client.get(f"/v1/analyses/{case_id}/overlay.png", headers=app),
            "not found": client.get("/v1/analyses/" + "0" * 32, headers=app),
            "no key": client.get(f"/v1/analyses/{case_id}"),
            "too large": client.post(
                "/v1/analyses", headers=app, files={"image": ("p.jpg", b"\xff\xd8\xff" + b"0" * 600_000)}
            ),
            "metrics": client.get("/metrics"),
        }
        for name, response in answers.items():
            assert response.headers["X-Content-Type-Options"] == "nosniff", name
            assert response.headers["Referrer-Policy"] == "no-referrer", name
            assert "no-store" in response.headers["Cache-Control"], name
        assert answers["too large"].status_code == 413 and answers["no key"].status_code == 401
        for path in ("/healthz", "/review", "/docs", "/openapi.json"):
            response = client.get(path)
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert response.headers["Referrer-Policy"] == "no-referrer", path


def test_docs_and_redoc_load_nothing_from_elsewhere(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        for page in ("/docs", "/redoc"):
            response = client.get(page)
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
            html = response.text
            csp = response.headers["Content-Security-Policy"]
            assert "http" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources and all(s.startswith("/docs/static/") for s in sources), sources
            for source in sources:
                asset = client.get(source)
                assert asset.status_code == 200 and len(asset.content) > 1000, source
        assert "unsafe-inline" not in client.get("/docs").headers["Content-Security-Policy"].split("style-src")[0]
        assert client.get("/docs/static/../../settings.py").status_code == 404
        assert client.get("/docs/static/core.py").status_code == 404
