"""Review API: lease exclusivity and expiry, double reviews, validation, statistics and exports."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.main import create_app
from infra.db.migrate import upgrade
from infra.db.models import AuditEvent, Case, Label, ReviewItem, ReviewLease
from infra.db.repositories import api_keys
from infra.db.repositories import review as review_repo
from infra.db.repositories.labels import reviewed_samples
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from infra.storage import open_store
from tests.conftest import encode, skin_photo
from tests.review_cases import queued_case

W, H = 320, 240
FINDINGS = [
    {"label": "lesion", "confidence": 0.41, "box": [40.0, 50.0, 60.0, 70.0]},
    {"label": "lesion", "confidence": 0.33, "box": [200.0, 100.0, 216.0, 118.0]},
]


def seed_case(
    settings: Settings,
    *,
    priority: float,
    reviews_required: int = 1,
    findings: list[dict[str, Any]] | None = None,
    created_at: datetime | None = None,
) -> str:
    """A finished analysis queued for review, with its photo in the store."""
    return queued_case(
        settings,
        size=(W, H),
        findings=FINDINGS if findings is None else findings,
        grade=1,
        reason="uncertain_findings",
        priority=priority,
        photo={"seed": int(priority * 10)},
        reviews_required=reviews_required,
        created_at=created_at,
    )


def make_key(settings: Settings, role: str, name: str) -> dict[str, str]:
    with session_scope(settings.sqlalchemy_url) as session:
        _, raw = api_keys.create_key(session=session, role=role, name=name)
    return {"X-API-Key": raw}


def key_id(settings: Settings, headers: dict[str, str]) -> str:
    with session_scope(settings.sqlalchemy_url) as session:
        key = api_keys.find_active(session=session, raw_key=headers["X-API-Key"])
        assert key is not None
        return key.id


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def derms(settings: Settings, client: TestClient) -> list[dict[str, str]]:
    return [make_key(settings, "dermatologist", f"derm-{n}") for n in range(3)]


def labels_body(boxes: list[list[float]] | None = None, grade: int | None = 1, verdict: str = "corrected") -> dict:
    boxes = [[40.0, 50.0, 60.0, 70.0]] if boxes is None else boxes
    return {"verdict": verdict, "grade": grade, "boxes": [{"label": "lesion", "box": b} for b in boxes]}


def test_claim_gives_each_dermatologist_a_different_case_by_priority(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    low = seed_case(settings, priority=0.5)
    high_new = seed_case(settings, priority=2.5)
    high_old = seed_case(settings, priority=2.5, created_at=old)

    first = client.post("/v1/review/claim", headers=derms[0])
    assert first.status_code == 200
    body = first.json()
    assert body["id"] == high_old  # same priority: the older case first
    assert body["photo_url"] == f"/v1/review/cases/{high_old}/photo.jpg"
    assert body["findings"][0]["box"] == FINDINGS[0]["box"] and body["classes"] == ["lesion"]
    expires = datetime.fromisoformat(body["lease_expires_at"])
    assert timedelta(seconds=settings.review_lease_seconds - 30) < expires - datetime.now(UTC)
    assert client.post("/v1/review/claim", headers=derms[1]).json()["id"] == high_new
    assert client.post("/v1/review/claim", headers=derms[2]).json()["id"] == low
    assert client.post("/v1/review/claim", headers=make_key(settings, "dermatologist", "late")).status_code == 204
    assert client.post("/v1/review/claim", headers=derms[0]).json()["id"] == high_old  # a reload resumes

    photo = client.get(body["photo_url"], headers=derms[0])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8"
    detail = client.get(f"/v1/review/cases/{high_old}", headers=derms[0]).json()
    assert detail["lease_expires_at"] is not None and detail["reason"] == "uncertain_findings"


def test_empty_queue_is_204(client: TestClient, derms: list[dict[str, str]]) -> None:
    response = client.post("/v1/review/claim", headers=derms[0])
    assert response.status_code == 204 and response.content == b""


def test_roles(settings: Settings, client: TestClient) -> None:
    case_id = seed_case(settings, priority=1.0)
    app_key = make_key(settings, "app", "phone")
    engineer = make_key(settings, "ml-engineer", "eng")
    assert client.post("/v1/review/claim").status_code == 401
    for method, path in [
        ("POST", "/v1/review/claim"),
        ("GET", f"/v1/review/cases/{case_id}"),
        ("GET", f"/v1/review/cases/{case_id}/photo.jpg"),
        ("GET", "/v1/review/stats"),
        ("GET", "/v1/review/export?format=coco"),
    ]:
        response = client.request(method, path, headers=app_key)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden_role"
    assert client.post("/v1/review/claim", headers=engineer).status_code == 403
    assert client.get("/v1/review/stats", headers=engineer).status_code == 200
    assert client.get("/v1/review/export?format=coco", headers=engineer).status_code == 200


def test_expired_lease_returns_the_case_to_the_queue(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    case_id = seed_case(settings, priority=1.0)
    assert client.post("/v1/review/claim", headers=derms[0]).json()["id"] == case_id
    assert client.post("/v1/review/claim", headers=derms[1]).status_code == 204
    with session_scope(settings.sqlalchemy_url) as session:
        session.execute(update(ReviewLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    late = client.post(f"/v1/review/cases/{case_id}/labels", headers=derms[0], json=labels_body())
    assert late.status_code == 409 and late.json()["error"]["code"] == "lease_expired"
    assert client.post("/v1/review/claim", headers=derms[1]).json()["id"] == case_id

    with session_scope(settings.sqlalchemy_url) as session:  # the beat task's cleanup
        session.execute(update(ReviewLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        expired = review_repo.expire_leases(session=session, now=datetime.now(UTC))
    assert {reviewer for _, reviewer in expired} == {key_id(settings, derms[0]), key_id(settings, derms[1])}
    with session_scope(settings.sqlalchemy_url) as session:
        assert session.scalars(select(ReviewLease)).all() == []


def test_labels_only_from_the_lease_holder_and_validated(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    case_id = seed_case(settings, priority=1.0)
    client.post("/v1/review/claim", headers=derms[0])
    url = f"/v1/review/cases/{case_id}/labels"

    other = client.post(url, headers=derms[1], json=labels_body())
    assert other.status_code == 409 and other.json()["error"]["code"] == "lease_not_held"
    cases = {
        "box_outside_photo": labels_body([[300.0, 10.0, 330.0, 20.0]]),
        "box_degenerate": labels_body([[50.0, 50.0, 50.0, 60.0]]),
        "grade_required": labels_body(grade=None),
    }
    for code, body in cases.items():
        response = client.post(url, headers=derms[0], json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == code, code
    unknown = {"verdict": "corrected", "grade": 1, "boxes": [{"label": "wart", "box": [1, 1, 5, 5]}]}
    assert client.post(url, headers=derms[0], json=unknown).json()["error"]["code"] == "unknown_label"
    assert client.post(url, headers=derms[0], json={**labels_body(), "grade": 4}).status_code == 422

    ok = client.post(url, headers=derms[0], json=labels_body([[38.0, 48.0, 64.0, 71.0], [100, 100, 120, 125]], 2))
    assert ok.status_code == 201, ok.text
    assert ok.json()["review_status"] == "done"
    again = client.post(url, headers=derms[0], json=labels_body())
    assert again.status_code == 409  # the lease ended with the submission
    with session_scope(settings.sqlalchemy_url) as session:
        (label,) = session.scalars(select(Label)).all()
        assert label.reviewer_id == key_id(settings, derms[0])
        assert label.model_version == "test-model-1" and label.grade == 2 and label.verdict == "corrected"
        assert label.boxes == [
            {"label": "lesion", "box": [38.0, 48.0, 64.0, 71.0]},
            {"label": "lesion", "box": [100.0, 100.0, 120.0, 125.0]},
        ]
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions == ["review.claimed", "review.labelled"]
        assert session.get(ReviewItem, case_id).status == "done"


def test_skip_releases_the_case_for_others_only(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    case_id = seed_case(settings, priority=1.0)
    client.post("/v1/review/claim", headers=derms[0])
    assert client.post(f"/v1/review/cases/{case_id}/skip", headers=derms[1]).status_code == 409
    assert client.post(f"/v1/review/cases/{case_id}/skip", headers=derms[0]).status_code == 204
    assert client.post("/v1/review/claim", headers=derms[0]).status_code == 204  # not offered again to them
    assert client.post("/v1/review/claim", headers=derms[1]).json()["id"] == case_id


def test_double_review_disagreement_asks_for_a_third_and_feeds_stats(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    agreed = seed_case(settings, priority=2.0, reviews_required=2)
    disputed = seed_case(settings, priority=1.0, reviews_required=2)
    r0, r1, r2 = derms

    assert client.post("/v1/review/claim", headers=r0).json()["id"] == agreed
    assert client.post("/v1/review/claim", headers=r1).json()["id"] == agreed  # a second, different reviewer
    assert client.post("/v1/review/claim", headers=r2).json()["id"] == disputed
    client.post(f"/v1/review/cases/{disputed}/skip", headers=r2)
    assert client.post(f"/v1/review/cases/{agreed}/labels", headers=r0, json=labels_body()).json()["review_status"] == (
        "queued"
    )
    second = client.post(f"/v1/review/cases/{agreed}/labels", headers=r1, json=labels_body([[41, 50, 61, 70]]))
    assert second.json()["review_status"] == "done" and not second.json()["disagreement"]

    assert client.post("/v1/review/claim", headers=r0).json()["id"] == disputed
    assert client.post("/v1/review/claim", headers=r0).json()["id"] == disputed  # resumed, not a second slot
    assert client.post("/v1/review/claim", headers=r1).json()["id"] == disputed
    client.post(f"/v1/review/cases/{disputed}/labels", headers=r0, json=labels_body(grade=1))
    split = client.post(f"/v1/review/cases/{disputed}/labels", headers=r1, json=labels_body(grade=3)).json()
    assert split["disagreement"] and split["review_status"] == "queued" and split["reviews_required"] == 3
    assert client.post("/v1/review/claim", headers=r0).status_code == 204
    with session_scope(settings.sqlalchemy_url) as session:
        assert len(session.scalars(select(ReviewLease).where(ReviewLease.case_id == disputed)).all()) == 3
    assert client.post("/v1/review/claim", headers=r2).status_code == 204  # r2 skipped it earlier

    stats = client.get("/v1/review/stats", headers=r0).json()
    assert stats["labels"] == 4
    assert stats["queue"] == {"waiting_first_review": 0, "waiting_more_reviews": 1, "done": 1, "leased_now": 0}
    (pair,) = stats["agreement"]["pairs"]
    assert pair["cases"] == 2 and pair["box_f1"] == 1.0
    # grades (1, 1) vs (1, 3): po = 1/2, pe = (2*1) / 4 = 1/2 -> kappa 0
    assert pair["grade_kappa"] == 0.0
    by_name = {r["reviewer"]: r for r in stats["agreement"]["reviewers"]}
    assert by_name[key_id(settings, r0)]["grade_agreement"] == 1.0  # the disputed case has no majority yet
    # quadratic-weighted beside plain kappa: (1, 1) vs (1, 3): observed (0 + (2/3)^2) / 2 = 2/9, expected 2/9 -> 0
    assert pair["grade_kappa_quadratic"] == 0.0
    assert stats["agreement"]["overall"]["grade_kappa"] == 0.0
    r1_row = by_name[key_id(settings, r1)]
    # against the model (grade 1, the two seeded findings) on both cases r1 labelled: grades 1 and 3
    assert r1_row["vs_model"]["cases"] == 2 and r1_row["vs_model"]["grade_agreement"] == 0.5
    assert r1_row["vs_model"]["grade_agreement_ci"][0] < 0.5 < r1_row["vs_model"]["grade_agreement_ci"][1]
    assert r1_row["flagged"] is False  # fewer cases than review_flag_min_cases


def test_export_formats(settings: Settings, client: TestClient, derms: list[dict[str, str]]) -> None:
    done = seed_case(settings, priority=2.0)
    seed_case(settings, priority=1.0)  # still queued: not exported
    client.post("/v1/review/claim", headers=derms[0])
    client.post(f"/v1/review/cases/{done}/labels", headers=derms[0], json=labels_body([[10, 20, 50, 60]], 2))

    with session_scope(settings.sqlalchemy_url) as session:
        samples = reviewed_samples(session)
    assert [(s.case_id, s.width, s.height, s.grade) for s in samples] == [(done, W, H, 2)]
    assert samples[0].reviewer_id == key_id(settings, derms[0])

    yolo = client.get("/v1/review/export?format=yolo", headers=derms[0])
    assert yolo.status_code == 200 and yolo.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(yolo.content))
    (label_path,) = [n for n in archive.namelist() if n.startswith("labels/")]
    assert label_path.endswith(f"/{done}.txt")
    assert archive.read(label_path).decode() == "0 0.093750 0.166667 0.125000 0.166667\n"
    assert archive.read(label_path.replace("labels/", "images/").replace(".txt", ".jpg"))[:2] == b"\xff\xd8"
    coco = json.loads(client.get("/v1/review/export?format=coco", headers=derms[0]).content)
    assert coco["annotations"][0]["bbox"] == [10.0, 20.0, 40.0, 40.0] and coco["images"][0]["grade"] == 2
    studio = json.loads(client.get("/v1/review/export?format=labelstudio", headers=derms[0]).content)
    assert studio[0]["data"]["image"].endswith(f"/v1/review/cases/{done}/photo.jpg")
    assert client.get("/v1/review/export?format=voc", headers=derms[0]).status_code == 422


def test_the_page_serves_its_vendored_library_under_a_strict_csp(client: TestClient) -> None:
    page = client.get("/review")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert '<script src="/review/static/vendor/konva.min.js">' in page.text
    konva = client.get("/review/static/vendor/konva.min.js")
    assert konva.status_code == 200 and konva.headers["content-type"].startswith("text/javascript")
    assert b"Konva JavaScript Framework v10.9.1" in konva.content and b"new Function" not in konva.content
    assert b"MIT License" in client.get("/review/static/vendor/konva.LICENSE").content
    assert client.get("/review/static/vendor/other.js").status_code == 404


def test_taxonomy_lists_lesion_types_mapped_to_model_classes(settings: Settings, client: TestClient) -> None:
    engineer = make_key(settings, "ml-engineer", "eng")
    derm = make_key(settings, "dermatologist", "derm")
    assert client.get("/v1/review/taxonomy", headers=make_key(settings, "app", "phone")).status_code == 403
    assert client.get("/v1/review/taxonomy").status_code == 401
    body = client.get("/v1/review/taxonomy", headers=engineer).json()
    assert body == client.get("/v1/review/taxonomy", headers=derm).json()
    assert body["model_classes"] == ["lesion"]
    by_name = {t["name"]: t for t in body["labels"]}
    assert [t["name"] for t in body["labels"]][:5] == ["lesion", "comedone", "papule", "pustule", "nodule_cyst"]
    assert by_name["papule"] == {"name": "papule", "display": "Papule", "category": "acne", "model_class": "lesion"}
    assert by_name["scar"]["category"] == "non_acne" and by_name["scar"]["model_class"] is None
    assert by_name["post_inflammatory_pigmentation"]["model_class"] is None


def test_a_papule_is_labelled_exported_with_its_taxonomy_and_mapped_for_training(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    """The model has one class; the dermatologist labels papules, pustules and a scar; every export carries the
    taxonomy and the reviewer; COCO loads in pycocotools; YOLO's val split holds none of its train images."""
    pycocotools_coco = pytest.importorskip("pycocotools.coco")
    ids = [seed_case(settings, priority=3.0 - n / 10) for n in range(6)]
    for case_id in ids:
        assert client.post("/v1/review/claim", headers=derms[0]).json()["id"] == case_id
        body = {
            "verdict": "corrected",
            "grade": 1,
            "boxes": [
                {"label": "papule", "box": [40, 50, 60, 70]},
                {"label": "pustule", "box": [100, 100, 120, 118]},
                {"label": "scar", "box": [200, 150, 260, 200]},
            ],
        }
        response = client.post(f"/v1/review/cases/{case_id}/labels", headers=derms[0], json=body)
        assert response.status_code == 201, response.text
        assert [b["label"] for b in response.json()["boxes"]] == ["papule", "pustule", "scar"]

    coco = json.loads(client.get("/v1/review/export?format=coco", headers=derms[0]).content)
    categories = {c["name"]: c for c in coco["categories"]}
    assert categories["papule"]["supercategory"] == "acne" and categories["papule"]["model_class"] == "lesion"
    assert categories["scar"]["supercategory"] == "non_acne" and categories["scar"]["model_class"] is None
    assert {i["reviewer_id"] for i in coco["images"]} == {key_id(settings, derms[0])}
    path = settings.var_path / "coco.json"
    path.write_text(json.dumps(coco))
    loaded = pycocotools_coco.COCO(str(path))
    papule = loaded.getCatIds(catNms=["papule"])
    assert len(loaded.getImgIds(catIds=papule)) == 6 and len(loaded.getAnnIds(catIds=papule)) == 6
    assert loaded.loadAnns(loaded.getAnnIds(catIds=papule)[0])[0]["bbox"] == [40.0, 50.0, 20.0, 20.0]

    archive = zipfile.ZipFile(io.BytesIO(client.get("/v1/review/export?format=yolo", headers=derms[0]).content))
    data_yaml = archive.read("data.yaml").decode()
    assert "train: images/train" in data_yaml and "val: images/val" in data_yaml
    train = {n.split("/")[-1] for n in archive.namelist() if n.startswith("images/train/")}
    val = {n.split("/")[-1] for n in archive.namelist() if n.startswith("images/val/")}
    assert train and val and not train & val and len(train | val) == 6
    taxonomy = {c["name"]: c for c in json.loads(archive.read("taxonomy.json"))}
    assert taxonomy["pustule"]["model_class"] == "lesion" and taxonomy["scar"]["category"] == "non_acne"
    studio = json.loads(client.get("/v1/review/export?format=labelstudio", headers=derms[0]).content)
    assert studio[0]["annotations"][0]["completed_by"] == key_id(settings, derms[0])
    assert studio[0]["annotations"][0]["result"][0]["meta"]["category"] == "acne"

    # training maps the taxonomy onto the model's one class and leaves the scar out
    from detector.datasets.snapshot import read_labels
    from pipelines.mlops.retraining import build_retraining_snapshot

    with session_scope(settings.sqlalchemy_url) as session:
        snapshot = build_retraining_snapshot(
            session=session,
            store=open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url),
            settings=settings,
            base=None,
        )
    assert snapshot.class_names == ["lesion"]
    image = next(iter(sorted((snapshot.path / "images").iterdir())))
    assert [box.label for box in read_labels(snapshot, image)] == [0, 0]


def test_suspects_are_ranked_and_routed_to_another_reviewer(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    confident = [
        {"label": "lesion", "confidence": 0.92, "box": [40.0, 50.0, 60.0, 70.0]},
        {"label": "lesion", "confidence": 0.88, "box": [200.0, 100.0, 216.0, 118.0]},
    ]
    sloppy = seed_case(settings, priority=2.0, findings=confident)
    careful = seed_case(settings, priority=1.0, findings=confident)
    r0, r1, _ = derms
    engineer = make_key(settings, "ml-engineer", "eng")
    assert client.post("/v1/review/claim", headers=r0).json()["id"] == sloppy
    # drops both confident lesions, grades 3 with no boxes
    client.post(f"/v1/review/cases/{sloppy}/labels", headers=r0, json={"verdict": "corrected", "grade": 3, "boxes": []})
    assert client.post("/v1/review/claim", headers=r0).json()["id"] == careful
    client.post(
        f"/v1/review/cases/{careful}/labels",
        headers=r0,
        json=labels_body([[40, 50, 60, 70], [200, 100, 216, 118]], grade=0),
    )

    listed = client.get("/v1/review/suspects", headers=engineer)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["checked"] == 2
    top = body["suspects"][0]
    assert top["case_id"] == sloppy and top["reviewer_id"] == key_id(settings, r0)
    assert top["missed_boxes"] == 2 and top["grade_from_boxes"] == 0
    assert {"missed_boxes", "grade_far_from_boxes"} <= set(top["reasons"])
    assert careful not in [s["case_id"] for s in body["suspects"]]
    assert client.get("/v1/review/suspects", headers=make_key(settings, "app", "phone")).status_code == 403

    routed = client.post(f"/v1/review/suspects/{sloppy}/route", headers=engineer)
    assert routed.status_code == 200, routed.text
    assert routed.json()["reason"] == "suspect_label,uncertain_findings" and routed.json()["status"] == "queued"
    again = client.post(f"/v1/review/suspects/{sloppy}/route", headers=engineer)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_routed"
    assert client.post("/v1/review/claim", headers=r0).status_code == 204  # never back to the same reviewer
    second = client.post("/v1/review/claim", headers=r1).json()
    assert second["id"] == sloppy and second["reason"].startswith("suspect_label")
    answer = client.post(
        f"/v1/review/cases/{sloppy}/labels",
        headers=r1,
        json=labels_body([[40, 50, 60, 70], [200, 100, 216, 118]], grade=0),
    ).json()
    # the second look disagrees with the first: like a split double review, a third reviewer adjudicates
    assert answer["disagreement"] and answer["review_status"] == "queued" and answer["reviews_required"] == 3
    r2 = derms[2]
    assert client.post("/v1/review/claim", headers=r2).json()["id"] == sloppy
    third = client.post(
        f"/v1/review/cases/{sloppy}/labels", headers=r2, json=labels_body([[40, 50, 60, 70], [200, 100, 216, 118]], 0)
    ).json()
    assert third["review_status"] == "done"
    assert sloppy not in [s["case_id"] for s in client.get("/v1/review/suspects", headers=engineer).json()["suspects"]]
    with session_scope(settings.sqlalchemy_url) as session:
        final = {s.case_id: s for s in reviewed_samples(session)}
        assert final[sloppy].grade == 0 and final[sloppy].reviewer_id == key_id(settings, r2)
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert "review.suspect_routed" in actions
    stats = client.get("/v1/review/stats", headers=engineer).json()["agreement"]
    pairs = {tuple(p["reviewers"]): p for p in stats["pairs"]}  # the second look measures agreement too
    assert len(pairs) == 3 and all(p["cases"] == 1 for p in pairs.values())
    r0_row = next(r for r in stats["reviewers"] if r["reviewer"] == key_id(settings, r0))
    assert r0_row["grade_agreement"] == 0.0 and r0_row["box_f1_vs_consensus"] == 0.0


def test_the_beat_task_routes_only_the_most_suspect_labels(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    from pipelines.review.second_look import route_most_suspect

    confident = [{"label": "lesion", "confidence": 0.95, "box": [40.0, 50.0, 60.0, 70.0]}]
    sloppy = seed_case(settings, priority=2.0, findings=confident)
    mild = seed_case(settings, priority=1.0, findings=confident)
    for case_id, body in (
        (sloppy, {"verdict": "corrected", "grade": 3, "boxes": []}),  # score 0.95 + 1.5 * 2 = 3.95
        (mild, {"verdict": "corrected", "grade": 0, "boxes": []}),  # score 0.95: below the 3.0 bar
    ):
        assert client.post("/v1/review/claim", headers=derms[0]).json()["id"] == case_id
        assert client.post(f"/v1/review/cases/{case_id}/labels", headers=derms[0], json=body).status_code == 201
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    with session_scope(settings.sqlalchemy_url) as session:
        assert route_most_suspect(session=session, store=store, settings=settings, bands=(5, 20, 50)) == [sloppy]
    with session_scope(settings.sqlalchemy_url) as session:
        assert session.get(ReviewItem, sloppy).status == "queued"
        assert session.get(ReviewItem, mild).status == "done"
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "review.suspect_routed")).one()
        assert (event.role, event.target) == ("system", sloppy)
    with session_scope(settings.sqlalchemy_url) as session:  # routed once only
        assert route_most_suspect(session=session, store=store, settings=settings, bands=(5, 20, 50)) == []


def test_missed_lesion_sweep_queues_a_confident_empty_answer_with_evidence_below_threshold(settings: Settings) -> None:
    """The model found nothing (no uncertainty either), yet its objectness map holds sub-threshold peaks."""
    from detector.model_card import ModelCard
    from detector.onnx_runtime import Detector
    from pipelines.review.missed_lesions import MissedLesionPolicy, sweep

    class Session:
        def run(self, _names: object, feed: dict[str, Any]) -> list[Any]:
            import numpy as np

            out = np.zeros((next(iter(feed.values())).shape[0], 5, 40), np.float32)
            for k in range(10):  # ten faint lesions, each scored 0.2 (operating threshold 0.25)
                out[:, 0:4, k] = (20 + 28 * k, 100 + 10 * k, 8, 8)
                out[:, 4, k] = 0.2
            out[:, 0:2, 10:] = 9999
            return [out]

    upgrade(settings.sqlalchemy_url)
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    ids = []
    with session_scope(settings.sqlalchemy_url) as session:
        for n, count in enumerate((0, 0, 7)):
            case = Case(status="done", width=W, height=H, findings=[], lesion_count=count, grade=0, uncertainty=0.0)
            session.add(case)
            session.flush()
            case.photo_key = f"cases/{case.id}/photo.jpg"
            store.put(case.photo_key, encode(skin_photo(W, H, seed=n)))
            ids.append(case.id)
    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=0.25, tta_flip=False)
    policy = MissedLesionPolicy(max_count=2, min_mass=1.0, min_uncertainty=0.2, sample_rate=1.0)
    since = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(settings.sqlalchemy_url) as session:
        queued = sweep(session=session, store=store, detector=Detector(card, Session()), policy=policy, since=since)
    assert [case_id for case_id, _ in queued] == ids[:2]  # the case with 7 lesions is not "few"
    assert queued[0][1] == pytest.approx(2.0, abs=0.01)
    with session_scope(settings.sqlalchemy_url) as session:
        item = session.get(ReviewItem, ids[0])
        assert item is not None and item.reason == "missed_lesions" and item.status == "queued"
        assert session.get(Case, ids[0]).review_reason == "missed_lesions"
        assert session.get(ReviewItem, ids[2]) is None
    with session_scope(settings.sqlalchemy_url) as session:  # a second sweep changes nothing
        assert sweep(session=session, store=store, detector=Detector(card, Session()), policy=policy, since=since) == []


def test_heatmap_is_computed_on_demand_and_cached(
    settings: Settings, client: TestClient, derms: list[dict[str, str]]
) -> None:
    case_id = seed_case(settings, priority=1.0)
    response = client.get(f"/v1/review/cases/{case_id}/heatmap.png", headers=derms[0])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    from PIL import Image

    assert Image.open(io.BytesIO(response.content)).size == (W, H)
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    cached = [k for k in (store.root / "cases" / case_id).iterdir() if k.name.startswith("heatmap-")]  # type: ignore[attr-defined]
    assert len(cached) == 1
    assert client.get(f"/v1/review/cases/{case_id}/heatmap.png", headers=derms[0]).content == response.content
    app = make_key(settings, "app", "phone")
    assert client.get(f"/v1/review/cases/{case_id}/heatmap.png", headers=app).status_code == 403


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    if request.param == "sqlite":
        return settings.sqlalchemy_url
    return request.getfixturevalue("postgres_url")


def test_concurrent_claims_never_share_a_case(settings: Settings, database_url: str) -> None:
    """Eight reviewers claim at once from three single-review cases and one double-review case."""
    upgrade(database_url)
    settings.database_url = database_url
    ids = [seed_case(settings, priority=p) for p in (1.0, 2.0, 3.0)]
    double = seed_case(settings, priority=0.5, reviews_required=2)
    results: dict[int, str | None] = {}
    barrier = threading.Barrier(8)

    def reviewer(n: int) -> None:
        barrier.wait()
        now = datetime.now(UTC)
        with session_scope(database_url) as session:
            item = review_repo.claim(
                session=session, reviewer_id=f"r{n}", now=now, expires_at=now + timedelta(minutes=5)
            )
            results[n] = item.case_id if item else None

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    claimed = [case_id for case_id in results.values() if case_id]
    assert sorted(claimed) == sorted([*ids, double, double])
    assert list(results.values()).count(None) == 3
