"""Property-based tests generated from our own OpenAPI document: no 5xx, and every answer (status code, headers,
body) is one the schema declares. Runs in process on the ASGI app with a valid key for each audience.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from api.main import create_app
from infra.db.engine import session_scope
from infra.db.migrate import upgrade
from infra.db.repositories import api_keys
from infra.settings import Settings

# which role's key each path prefix is exercised with (the role matrix test covers the other roles)
AUDIENCE = (("/v1/analyses", "app"), ("/v1/review", "dermatologist"), ("/v1/", "ml-engineer"))
_keys: dict[str, str] = {}


@pytest.fixture
def api_schema(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    from pipelines import celery_app as celery_module

    monkeypatch.setattr(celery_module.celery_app, "send_task", lambda *a, **k: None)  # nothing leaves the process
    quiet = settings.model_copy(update={"rate_limit_per_minute": 0})  # generated traffic is not abuse
    upgrade(quiet.sqlalchemy_url)
    with session_scope(quiet.sqlalchemy_url) as session:
        for role in ("app", "dermatologist", "ml-engineer"):
            _keys[role] = api_keys.create_key(session=session, role=role, name=role)[1]
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(quiet))


schema = schemathesis.pytest.from_fixture("api_schema")


def key_for(path: str) -> dict[str, str]:
    role = next((role for prefix, role in AUDIENCE if path.startswith(prefix)), None)
    return {"X-API-Key": _keys[role]} if role else {}


@schema.parametrize()
@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    response = case.call(headers=key_for(case.path))
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    case.validate_response(response, headers=key_for(case.path))
