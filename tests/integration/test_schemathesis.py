"""Property-based tests generated from our own OpenAPI document: no 5xx, and every answer (status code, headers,
body) is one the schema declares. Runs in process on the ASGI app, with a valid key for each audience.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import create_app
from infra.db.migrate import upgrade
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings

# "schema-valid" bytes are rarely a decodable photo: a 400/415 for them is the documented answer, not a bug
SEMANTIC_CHECKS = [positive_data_acceptance]

# which role's key each path prefix is exercised with (the role matrix test covers the other roles)
AUDIENCE = (("/v1/analyses", "app"), ("/v1/review", "dermatologist"), ("/v1/", "ml-engineer"))
EXAMPLES_PER_OPERATION = 10


def exercise(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    """Generated requests for one operation: never a 5xx, always a response the schema documents."""

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers, timeout=60)  # the first registry call creates its tables
        assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"
        case.validate_response(response, headers=headers, excluded_checks=SEMANTIC_CHECKS)

    check()


def test_every_operation_conforms_to_the_schema(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.tasks import app as celery_module

    monkeypatch.setattr(celery_module.celery_app, "send_task", lambda *a, **k: None)  # nothing leaves the process
    quiet = settings.model_copy(  # generated traffic is not abuse
        update={"rate_limit_per_minute": 0, "rate_limit_unauthenticated_per_minute": 0}
    )
    upgrade(quiet.sqlalchemy_url)
    with session_scope(quiet.sqlalchemy_url) as session:
        keys = {
            role: api_keys.create_key(session=session, role=role, name=role)[1]
            for role in ("app", "dermatologist", "ml-engineer")
        }
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(quiet))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for operation in operations:
        role = next((r for prefix, r in AUDIENCE if operation.path.startswith(prefix)), None)
        headers = {"X-API-Key": keys[role]} if role else {}

        try:
            exercise(operation, headers)
        except Exception as exc:  # collect every operation's first failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
