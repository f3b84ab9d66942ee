"""Erasure reaches every copy the system controls: retraining snapshots holding a deleted case are revoked at once
(no training run may use them) and their folders removed; MLflow runs trained on them lose photo artefacts and are
tagged, as are the model versions they registered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from detector.datasets import Sample, build_snapshot
from detector.synthetic import write_yolo_dataset
from infra.db.models import Case, Label
from infra.db.repositories import api_keys
from infra.db.repositories import review as review_repo
from infra.db.repositories import snapshots as snapshots_repo
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from infra.storage import open_store
from pipelines.mlops import erasure
from pipelines.mlops.datasets import import_folder
from pipelines.mlops.registry import Registry
from pipelines.mlops.retraining import build_retraining_snapshot
from tests.conftest import encode, skin_photo


def reviewed_case(settings: Settings, app_key_id: str, seed: int) -> str:
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    with session_scope(settings.sqlalchemy_url) as session:
        case = Case(status="done", width=320, height=240, api_key_id=app_key_id, review_queued=True, grade=1)
        session.add(case)
        session.flush()
        case.photo_key = f"cases/{case.id}/photo.jpg"
        store.put(case.photo_key, encode(skin_photo(320, 240, seed=seed)))
        item = review_repo.enqueue(session=session, case_id=case.id, reason="audit", priority=0.1, reviews_required=1)
        item.status = "done"
        session.add(
            Label(
                case_id=case.id,
                reviewer_id="dr",
                verdict="corrected",
                grade=1,
                boxes=[{"label": "lesion", "box": [10, 10, 30, 30]}],
            )
        )
        return case.id


def test_deleting_a_case_revokes_and_purges_its_snapshots_and_artefacts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("pipelines.tasks.app.enqueue_task", lambda *_: None)
    purges: list[str] = []
    monkeypatch.setattr(erasure, "request_purge", lambda: purges.append("sent"))
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            app_row, app_key = api_keys.create_key(session=session, role="app", name="phone")
            _, ml_key = api_keys.create_key(session=session, role="ml-engineer", name="ml")
            app_id = app_row.id
        erased, kept = reviewed_case(settings, app_id, 1), reviewed_case(settings, app_id, 2)
        store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
        with session_scope(settings.sqlalchemy_url) as session:
            base = import_folder(
                session=session, src=write_yolo_dataset(tmp_path / "b", range(2), 128), root=tmp_path / "ds"
            )
            snapshot = build_retraining_snapshot(session=session, store=store, settings=settings, base=None)
            base_id = base.id
        # a snapshot from before snapshots were registered: found by its manifest
        legacy = build_snapshot(
            [Sample(image=store.get(f"cases/{erased}/photo.jpg"), boxes=(), image_id=f"case_{erased}")],
            class_names=["lesion"], root=settings.var_path / "datasets", name="retrain-old", source="review",
        )  # fmt: skip
        registry = Registry.from_settings(settings)
        run = registry.client.create_run(registry.experiment_id(), tags={"dataset_digest": snapshot.digest})
        plots = tmp_path / "plots"
        plots.mkdir()
        for name in ("train_batch0.jpg", "results.png"):
            (plots / name).write_bytes(b"x")
            registry.client.log_artifact(run.info.run_id, str(plots / name), artifact_path="plots")
        model = tmp_path / "model"
        shutil.copytree(settings.model_dir, model, ignore=shutil.ignore_patterns("*.onnx"))
        version = registry.register_folder(
            run_id=run.info.run_id, model_dir=model, tags={"dataset_digest": snapshot.digest}
        )

        assert client.delete(f"/v1/analyses/{erased}", headers={"X-API-Key": app_key}).status_code == 204
        assert purges == ["sent"]
        ml = {"X-API-Key": ml_key}
        listed = {d["id"]: d for d in client.get("/v1/datasets", headers=ml).json()}
        assert listed[snapshot.path.name]["revoked"] and listed[legacy.path.name]["revoked"]
        assert not listed[base_id]["revoked"]
        refused = client.post("/v1/training-runs", json={"dataset": snapshot.path.name}, headers=ml)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "dataset_revoked"

        with session_scope(settings.sqlalchemy_url) as session:  # what the training worker's purge task does
            assert erasure.purge_revoked(session=session, settings=settings) == {
                "snapshots_removed": 2,
                "runs_cleaned": 1,
            }
            assert erasure.purge_revoked(session=session, settings=settings)["snapshots_removed"] == 0  # idempotent
        assert not snapshot.path.exists() and not legacy.path.exists()
        assert (tmp_path / "ds" / base_id).is_dir()
        left = {a.path for a in registry.client.list_artifacts(run.info.run_id, "plots")}
        assert left == {"plots/results.png"}
        assert registry.client.get_run(run.info.run_id).data.tags["dataset_revoked"].endswith(erased)
        assert registry.version(version).tags["dataset_revoked"].endswith(erased)

        with session_scope(settings.sqlalchemy_url) as session:  # the next snapshot holds the other case only
            rebuilt = build_retraining_snapshot(session=session, store=store, settings=settings, base=None)
            row = snapshots_repo.get(session=session, snapshot_id=rebuilt.path.name)
            assert row is not None and row.case_ids == [kept] and row.revoked_at is None


def test_the_purge_runs_on_the_training_queue_and_hourly() -> None:
    from pipelines.tasks.app import build_config, celery_app

    celery_app.loader.import_default_modules()
    assert "training.purge_erased" in celery_app.tasks
    assert celery_app.amqp.router.route({}, "training.purge_erased")["queue"].name == "training"
    schedule = build_config()["beat_schedule"]
    assert schedule["erasure-purge"]["task"] == "training.purge_erased"
