"""Who saw what: dermatologists see only cases that are or were in review, every read of a case's details, photo
or overlay by them and every export is audited, and reviewers are people (a rotated key is the same reviewer)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from infra.db.models import AuditEvent, Case, Label
from infra.db.repositories import api_keys
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from infra.storage import open_store
from tests.conftest import encode, skin_photo
from tests.integration.test_review_api import seed_case

LABELS = {"verdict": "corrected", "grade": 1, "boxes": [{"label": "lesion", "box": [40, 50, 60, 70]}]}


def new_key(settings: Settings, role: str, name: str, person_of: str | None = None) -> dict[str, str]:
    with session_scope(settings.sqlalchemy_url) as session:
        person = api_keys.person_of(session=session, prefix=person_of[:10])[0] if person_of else None
        _, raw = api_keys.create_key(session=session, role=role, name=name, person_id=person)
    return {"X-API-Key": raw}


def plain_analysis(settings: Settings) -> str:
    """A finished analysis that was never routed to review."""
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    with session_scope(settings.sqlalchemy_url) as session:
        case = Case(status="done", width=320, height=240, findings=[], lesion_count=0, grade=0, review_queued=False)
        session.add(case)
        session.flush()
        case.photo_key = f"cases/{case.id}/photo.jpg"
        store.put(case.photo_key, encode(skin_photo(320, 240, seed=9)))
        return case.id


def audit(settings: Settings, action: str) -> list[tuple[str | None, dict]]:
    with session_scope(settings.sqlalchemy_url) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [(row.target, dict(row.details)) for row in rows]


def test_dermatologists_see_review_cases_only_and_every_read_is_audited(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        derm = new_key(settings, "dermatologist", "dr-a")
        ml = new_key(settings, "ml-engineer", "ml")
        private = plain_analysis(settings)
        reviewed = seed_case(settings, priority=0.5)
        for path in (f"/v1/analyses/{private}", f"/v1/analyses/{private}/overlay.png"):
            assert client.get(path, headers=derm).status_code == 404, path
        assert client.get(f"/v1/analyses/{reviewed}", headers=derm).status_code == 200
        assert client.get(f"/v1/analyses/{reviewed}/overlay.png", headers=derm).status_code == 200
        assert client.get(f"/v1/review/cases/{reviewed}", headers=derm).status_code == 200
        assert client.get(f"/v1/review/cases/{reviewed}/photo.jpg", headers=derm).status_code == 200
        reads = audit(settings, "case.read")
        assert [(target, d["what"]) for target, d in reads] == [
            (reviewed, "details"),
            (reviewed, "overlay"),
            (reviewed, "details"),
            (reviewed, "photo"),
        ]
        assert all(target != private for target, _ in reads)
        claim = client.post("/v1/review/claim", headers=derm).json()
        assert client.post(f"/v1/review/cases/{claim['id']}/labels", json=LABELS, headers=derm).status_code == 201
        assert client.get("/v1/review/export?format=coco", headers=ml).status_code == 200
        assert client.get("/v1/review/export?format=yolo", headers=derm).status_code == 200
        exports = audit(settings, "review.exported")
        assert [(d["format"], d["cases"]) for _, d in exports] == [("coco", [reviewed]), ("yolo", [reviewed])]


def test_a_person_with_two_keys_is_one_reviewer(settings: Settings) -> None:
    """Double review needs two people: the same dermatologist's rotated key does not give the second review."""
    with TestClient(create_app(settings)) as client:
        first = new_key(settings, "dermatologist", "dr-a")
        rotated = new_key(settings, "dermatologist", "dr-a (new phone)", person_of=first["X-API-Key"])
        other = new_key(settings, "dermatologist", "dr-b")
        case_id = seed_case(settings, priority=0.9, reviews_required=2)
        claimed = client.post("/v1/review/claim", headers=first).json()
        assert claimed["id"] == case_id
        done = client.post(f"/v1/review/cases/{case_id}/labels", json=LABELS, headers=first)
        assert done.status_code == 201 and done.json()["review_status"] == "queued"
        assert client.post("/v1/review/claim", headers=rotated).status_code == 204  # already reviewed it
        assert client.post("/v1/review/claim", headers=other).json()["id"] == case_id
        second = client.post(f"/v1/review/cases/{case_id}/labels", json=LABELS, headers=other)
        assert second.status_code == 201 and second.json()["review_status"] == "done"
        pairs = client.get("/v1/review/stats", headers=rotated).json()["agreement"]["pairs"]
        assert len(pairs) == 1 and len(set(pairs[0]["reviewers"])) == 2
    with session_scope(settings.sqlalchemy_url) as session:
        reviewers = sorted(session.scalars(select(Label.reviewer_id)))
        keys = {k.name: k for k in api_keys.list_keys(session=session)}
    assert keys["dr-a"].person_id == keys["dr-a (new phone)"].person_id != keys["dr-b"].person_id
    assert reviewers == sorted([keys["dr-a"].person_id, keys["dr-b"].person_id])


def test_key_rotation_from_the_command_line_keeps_the_person(settings: Settings) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    first = runner.invoke(app, ["keys", "create", "--role", "dermatologist", "--name", "dr-a"])
    assert first.exit_code == 0, first.output
    old = first.stdout.strip().splitlines()[-1]
    rotated = runner.invoke(
        app, ["keys", "create", "--role", "dermatologist", "--name", "dr-a 2", "--same-person-as", old[:10]]
    )
    assert rotated.exit_code == 0, rotated.output
    wrong_role = runner.invoke(app, ["keys", "create", "--role", "app", "--same-person-as", old[:10]])
    assert wrong_role.exit_code == 1 and "role" in wrong_role.output
    with session_scope(settings.sqlalchemy_url) as session:
        people = {k.name: k.person_id for k in api_keys.list_keys(session=session)}
    assert people["dr-a"] == people["dr-a 2"] and len(people) == 2
