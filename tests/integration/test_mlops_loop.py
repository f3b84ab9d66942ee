"""The MLOps loop on a real MLflow (SQLite backend): retrain -> register -> gate -> serve -> roll back.

Candidates are compared honestly through the serving path on a frozen synthetic benchmark. The "worse"
model is the shipped network served with `max_det=1` (one finding per photo), a real serving regression.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from detector.model_card import ModelCard
from detector.synthetic import synthetic_skin_photo, write_yolo_dataset
from infra.db.models import TrainingRun
from infra.db.repositories.api_keys import create_key
from infra.db.repositories.audit import Actor
from infra.db.unit_of_work import session_scope
from infra.settings import REPO_ROOT, Settings, get_settings
from pipelines.mlops.datasets import import_folder
from pipelines.mlops.promotion import move_alias
from pipelines.mlops.registry import Registry, log_model_run
from pipelines.mlops.retraining import run_training

pytestmark = pytest.mark.slow


def model_folder(dest: Path, **card_changes: object) -> Path:
    dest.mkdir(parents=True)
    source = REPO_ROOT / "detector" / "weights"
    card = ModelCard.load(source)
    for name in card.files():
        shutil.copy2(source / name, dest / name)
    replace(card, **card_changes).save(dest)
    return dest


def empty_mlflow_db(dest: Path) -> None:
    """Copy an empty, migrated MLflow database into place: building one runs ~60 migrations (10 s of CPU).

    Kept per MLflow version next to the shared ONNX cache; a new MLflow builds a fresh one.
    """
    import mlflow

    template = REPO_ROOT / "var" / "cache" / "mlflow" / f"empty-{mlflow.__version__}.db"
    if not template.is_file():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = template.with_name(f".{template.name}.{os.getpid()}")
        Registry(tracking_uri=f"sqlite:///{building}", model_name="init").client.search_experiments()
        building.replace(template)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template, dest)


@pytest.fixture
def mlops_settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    empty_mlflow_db(settings.var_path / "mlflow.db")
    monkeypatch.setenv("SKINTROUBLE_FOLLOW_REGISTRY", "true")
    monkeypatch.setenv(
        "SKINTROUBLE_BENCHMARK_DIR", str(write_yolo_dataset(tmp_path / "benchmark", range(500, 504), 640))
    )
    monkeypatch.setenv("SKINTROUBLE_PROMOTION_MARGIN", "0.005")
    monkeypatch.setenv("SKINTROUBLE_PROMOTION_MAX_GRADE_DROP", "1.0")
    monkeypatch.setenv("SKINTROUBLE_MODEL_REFRESH_SECONDS", "3600")
    get_settings.cache_clear()
    return get_settings()


def test_retrain_gate_serve_and_roll_back(mlops_settings: Settings, tmp_path: Path) -> None:
    from api.main import create_app

    settings = mlops_settings
    registry = Registry.from_settings(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, ml_key = create_key(session=session, role="ml-engineer", name="ml")
            _, app_key = create_key(session=session, role="app", name="phone")
            # v1: the shipped network served with max_det=1 holds `release`
            _, v1 = log_model_run(
                registry,
                model_dir=model_folder(tmp_path / "v1", version="handicapped-1", max_det=1),
                params={"source": "test"},
                tags={"parent_version": "none"},
                run_name="v1",
            )
            move_alias(
                session=session,
                registry=registry,
                alias="release",
                version=v1,
                actor=Actor(id="test", role="ml-engineer", name="test"),
                reason="start",
                figures={},
            )
            run = TrainingRun(
                status="queued",
                params={
                    "epochs": 1,
                    "imgsz": 128,
                    "batch": 2,
                    "from": "release",
                    "dataset": import_folder(
                        session=session, src=write_yolo_dataset(tmp_path / "base", range(4), 128), root=tmp_path / "ds"
                    ).id,
                    "extra": {"mosaic": 0.0, "plots": False},
                },
            )
            session.add(run)
            session.flush()
            run_id = run.id
        ml, phone = {"X-API-Key": ml_key}, {"X-API-Key": app_key}

        # a tiny CPU retrain registers a version tagged with its data, parent and commit, aliased poc
        v2 = run_training(run_id, settings=settings, store=app.state.resources.store)
        status = client.get(f"/v1/training-runs/{run_id}", headers=ml).json()
        assert status["status"] == "succeeded" and status["model_version"] == v2 and status["progress"] == 1.0
        info = registry.version(v2)
        assert info.tags["parent_version"] == v1 and info.tags["dataset_digest"] == status["dataset_digest"]
        assert info.tags["git_commit"] and "poc" in info.aliases
        mlrun = registry.client.get_run(info.run_id)
        assert mlrun.data.params["epochs"] == "1" and mlrun.inputs.dataset_inputs
        assert any(key.startswith("metrics/mAP50") for key in mlrun.data.metrics)
        dataset = mlrun.inputs.dataset_inputs[0].dataset
        assert status["dataset_digest"].startswith(dataset.digest) and status["dataset_digest"] in dataset.source
        artifacts = {a.path for a in registry.client.list_artifacts(info.run_id, "model")}
        assert {"model/model.json", "model/weights.pt", "model/model.onnx"} <= artifacts
        assert "plots/metrics.png" in {a.path for a in registry.client.list_artifacts(info.run_id, "plots")}

        # v3: the shipped model as served; it beats v1 on the frozen benchmark and is promoted
        _, v3 = log_model_run(
            registry,
            model_dir=model_folder(tmp_path / "v3", version="full-3"),
            params={"source": "test"},
            tags={},
            run_name="v3",
        )
        promoted = client.post(f"/v1/models/{v3}/promote", json={"alias": "release", "reason": "beats v1"}, headers=ml)
        assert promoted.status_code == 200, promoted.text
        figures = promoted.json()["figures"]
        assert figures["passed"] and figures["candidate"]["mAP50"] >= figures["holder"]["mAP50"] + 0.005
        assert json.loads(registry.version(v3).tags["gate.release"])["passed"] is True

        # the worse model is refused, with the gate's figures
        refused = client.post(f"/v1/models/{v1}/promote", json={"alias": "release", "reason": "try"}, headers=ml)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "promotion_refused"
        assert refused.json()["error"]["figures"]["passed"] is False
        assert registry.alias("release") == v3

        # the API serves the new release without a restart
        app.state.resources.models.refresh()
        photo = io.BytesIO()
        Image.fromarray(synthetic_skin_photo(7).rgb).save(photo, format="JPEG")
        served = client.post("/v1/analyses", files={"image": ("p.jpg", photo.getvalue(), "image/jpeg")}, headers=phone)
        assert served.status_code == 200 and served.json()["model_version"] == "full-3"

        # rollback moves release back, the history records every move
        back = client.post("/v1/models/rollback", json={"alias": "release", "reason": "regression"}, headers=ml)
        assert back.status_code == 200 and back.json()["version"] == v1
        app.state.resources.models.refresh()
        again = client.post("/v1/analyses", files={"image": ("p.jpg", photo.getvalue(), "image/jpeg")}, headers=phone)
        assert again.json()["model_version"] == "handicapped-1"
        assert (
            client.post("/v1/models/rollback", json={"alias": "release", "reason": "again"}, headers=ml).json()[
                "error"
            ]["code"]
            == "nothing_to_roll_back"
        )  # v1 was the first release: nothing older to go back to
        listing = client.get("/v1/models", headers=ml).json()
        assert listing["aliases"] == {"poc": v2, "mvp": None, "release": v1}
        assert [e["version"] for e in listing["history"]][:3] == [v1, v3, v2]
        assert client.get("/v1/models", headers=phone).status_code == 403


def test_serving_continues_when_the_registry_is_unreachable(mlops_settings: Settings, tmp_path: Path) -> None:
    """The real resolver against a registry that went away: the loaded release stays; a fresh process that
    cannot reach the registry starts on the shipped model instead of failing."""
    from pipelines.mlops.model_provider import ModelProvider
    from pipelines.mlops.release_follower import release_resolver

    settings = mlops_settings
    registry = Registry.from_settings(settings)
    _, version = log_model_run(
        registry, model_dir=model_folder(tmp_path / "r", version="released-1"), params={}, tags={}, run_name="r"
    )
    registry.set_alias("release", version)
    provider = ModelProvider(
        default_dir=settings.model_dir, cache_dir=settings.model_cache_dir, resolver=release_resolver(settings)
    )
    assert provider.get().version == "released-1"

    gone = settings.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})  # nothing listens there
    with pytest.raises(Exception, match=re.escape("127.0.0.1:9")):
        release_resolver(gone)()  # the resolver reports the outage instead of "nothing released"
    provider.resolver = release_resolver(gone)
    assert provider.refresh() is False
    assert provider.get().version == "released-1"

    cold = ModelProvider(default_dir=settings.model_dir, cache_dir=settings.model_cache_dir, resolver=provider.resolver)
    assert cold.get().version == ModelCard.load(settings.model_dir).version


def test_serving_follows_the_release_without_importing_mlflow(mlops_settings: Settings, tmp_path: Path) -> None:
    """A serving process asks the registry's alias table who holds `release` and has a child process download
    it: MLflow (about 130 MB of RSS) never enters the API process."""
    settings = mlops_settings
    registry = Registry.from_settings(settings)
    _, version = log_model_run(
        registry, model_dir=model_folder(tmp_path / "r", version="light-1"), params={}, tags={}, run_name="r"
    )
    registry.set_alias("release", version)
    script = (
        "import sys\n"
        "from infra.settings import get_settings\n"
        "from pipelines.resources import serving_resources\n"
        "resources = serving_resources(get_settings())\n"
        "print(resources.models.get().version, 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["light-1", "False"]


def test_mlflow_never_phones_home(tmp_path: Path) -> None:
    """`import mlflow` starts a telemetry client unless disabled before that import; ours is disabled.

    Run outside pytest's environment (MLflow itself switches telemetry off under PYTEST_CURRENT_TEST or CI).
    """
    empty_mlflow_db(tmp_path / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_CURRENT_TEST", "CI", "MLFLOW_DISABLE_TELEMETRY"}}
    env.pop("DO_NOT_TRACK", None)
    code = (
        "from pipelines.mlops.registry import Registry\n"
        f"Registry(tracking_uri='sqlite:///{tmp_path / 'mlflow.db'}', model_name='m').aliases()\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print('telemetry', get_telemetry_client())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert "telemetry None" in out.stdout


def test_models_cli_bootstrap_list_promote_rollback(mlops_settings: Settings) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    first = runner.invoke(app, ["models", "bootstrap"])
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, ["models", "bootstrap"]).stdout.strip() == first.stdout.strip() == "1"  # idempotent
    listing = json.loads(runner.invoke(app, ["models", "list"]).stdout)
    assert listing["aliases"] == {"poc": None, "mvp": None, "release": "1"}
    promoted = runner.invoke(app, ["models", "promote", "1", "--alias", "mvp", "--reason", "first mvp"])
    assert promoted.exit_code == 0, promoted.output
    figures = json.loads(promoted.stdout)["figures"]
    assert figures["passed"] and figures["candidate"]["images"] == 4.0 and figures["candidate"]["mAP50"] > 0
    refused = runner.invoke(app, ["models", "rollback", "--alias", "release"])
    assert refused.exit_code == 1 and "no earlier holder" in refused.output


def test_training_run_is_queued_after_commit(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /v1/training-runs: the row exists before the task is sent; a dead queue answers 503, row failed."""
    from api.main import create_app
    from pipelines.tasks.app import celery_app

    assert celery_app.amqp.router.route({}, "training.retrain")["queue"].name == "training"
    seen: list[tuple[str, str | None]] = []

    def send(name: str, run_id: str) -> None:
        with session_scope(settings.sqlalchemy_url) as session:  # a worker's view: is the row committed?
            row = session.get(TrainingRun, run_id)
            seen.append((name, row.status if row else None))

    monkeypatch.setattr("pipelines.tasks.app.enqueue_task", send)
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, key = create_key(session=session, role="ml-engineer", name="ml")
        ml = {"X-API-Key": key}
        body = {"epochs": 2, "imgsz": 320, "from": "scratch"}
        started = client.post("/v1/training-runs", json=body, headers=ml)
        assert started.status_code == 202, started.text
        run = started.json()
        assert seen == [("training.retrain", "queued")] and run["params"]["from"] == "scratch"
        assert client.get(f"/v1/training-runs/{run['id']}", headers=ml).json()["status"] == "queued"
        assert client.get("/v1/training-runs/nope", headers=ml).status_code == 404

        def dead(name: str, run_id: str) -> None:
            raise ConnectionError("broker down")

        monkeypatch.setattr("pipelines.tasks.app.enqueue_task", dead)
        refused = client.post("/v1/training-runs", json=body, headers=ml)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    with session_scope(settings.sqlalchemy_url) as session:
        statuses = sorted(r.status for r in session.query(TrainingRun))
    assert statuses == ["failed", "queued"]


def test_training_data_is_a_registered_snapshot_id_never_a_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A path in the request is refused the same way whether the folder exists or not (no existence oracle);
    only ids of snapshots the system built or imported are accepted, and a revoked one is refused."""
    from api.main import create_app
    from infra.db.repositories import snapshots as snapshots_repo

    monkeypatch.setattr("pipelines.tasks.app.enqueue_task", lambda *_: None)
    with TestClient(create_app(settings)) as client:
        with session_scope(settings.sqlalchemy_url) as session:
            _, key = create_key(session=session, role="ml-engineer", name="ml")
            registered = import_folder(
                session=session, src=write_yolo_dataset(tmp_path / "base", range(2), 128), root=tmp_path / "ds"
            ).id
        ml = {"X-API-Key": key}
        answers = [
            client.post("/v1/training-runs", json={"epochs": 1, "base_data": path}, headers=ml)
            for path in ("/root", "/does/not/exist")
        ]
        assert [a.status_code for a in answers] == [422, 422]
        assert answers[0].json()["error"]["code"] == answers[1].json()["error"]["code"] == "invalid_request"
        for bad in ("/root", "../../etc", "var/datasets/x"):
            refused = client.post("/v1/training-runs", json={"epochs": 1, "dataset": bad}, headers=ml)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request", bad
        unknown = client.post("/v1/training-runs", json={"epochs": 1, "dataset": "retrain-0123456789ab"}, headers=ml)
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "dataset_not_found"
        listed = client.get("/v1/datasets", headers=ml).json()
        assert [d["id"] for d in listed] == [registered] and listed[0]["revoked"] is False
        accepted = client.post("/v1/training-runs", json={"epochs": 1, "dataset": registered}, headers=ml)
        assert accepted.status_code == 202 and accepted.json()["params"]["dataset"] == registered
        with session_scope(settings.sqlalchemy_url) as session:
            row = snapshots_repo.get(session=session, snapshot_id=registered)
            assert row is not None
            snapshots_repo.revoke(session=session, row=row, reason="test")
        revoked = client.post("/v1/training-runs", json={"epochs": 1, "dataset": registered}, headers=ml)
        assert revoked.status_code == 422 and revoked.json()["error"]["code"] == "dataset_revoked"
