"""Retraining: reviewed labels (+ base data) -> immutable snapshot -> fine-tune -> MLflow run -> new `poc` version.

The logic behind the `training.retrain` task; it runs wherever the `training` queue is consumed (a GPU machine
in production, the embedded worker in development).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from detector.datasets import LabelledBox, Sample, build_snapshot, read_dataset
from detector.datasets.snapshot import Snapshot
from detector.export import ensure_onnx
from detector.model_card import ModelCard
from infra.db.engine import session_scope
from infra.db.models import Label, TrainingRun
from infra.db.repositories import cases as cases_repo
from infra.db.repositories.labels import reviewed_samples
from infra.settings import Settings
from infra.storage import PhotoStore
from pipelines.model_registry import Registry, git_commit, log_model_run
from pipelines.promotion import move_alias

log = logging.getLogger(__name__)
CLASS_NAMES = ["lesion"]


def bootstrap_release(*, session: Session, registry: Registry, settings: Settings) -> str:
    """Make sure something holds `release`: the shipped model becomes the first version (idempotent)."""
    current = registry.alias("release")
    if current is not None:
        return current
    card = ModelCard.load(settings.model_dir)
    _, version = log_model_run(
        registry,
        model_dir=settings.model_dir,
        params={"source": "shipped", "card_version": card.version},
        tags={"card_version": card.version, "parent_version": "none", "git_commit": git_commit()},
        run_name=f"bootstrap-{card.version}",
    )
    move_alias(
        session=session,
        registry=registry,
        alias="release",
        version=version,
        actor="bootstrap",
        reason="shipped model registered as the first release",
        figures=card.metrics,
    )
    return version


def labels_since_last_run(session: Session) -> int:
    last = session.scalar(select(func.max(TrainingRun.created_at)))
    query = select(func.count()).select_from(Label)
    if last is not None:
        query = query.where(Label.created_at > last)
    return int(session.scalar(query) or 0)


def build_retraining_snapshot(
    *, session: Session, store: PhotoStore, settings: Settings, base_data: Path | None
) -> Snapshot:
    """Base data + every finished review, minus deleted cases; identical content gives the same snapshot."""
    samples: list[Sample] = []
    if base_data is not None:
        samples.extend(read_dataset("yolo", base_data).samples)
    for item in reviewed_samples(session):
        boxes = tuple(LabelledBox(0, *[float(v) for v in b["box"]]) for b in item.boxes)
        samples.append(Sample(image=store.get(item.photo_key), boxes=boxes, image_id=f"case_{item.case_id}"))
    if not samples:
        raise ValueError("nothing to train on: no base data and no reviewed labels")
    exclude = {f"case_{case_id}" for case_id in cases_repo.deleted_ids(session=session)}
    return build_snapshot(
        samples,
        class_names=CLASS_NAMES,
        root=settings.var_path / "datasets",
        name="retrain",
        source="review",
        exclude=exclude,
        exist_ok=True,
    )


def _starting_point(registry: Registry, settings: Settings, start_from: str) -> tuple[Path | None, str, ModelCard]:
    """(checkpoint, parent version, card to inherit serving settings from)."""
    if start_from == "scratch":
        return None, "none", ModelCard.load(settings.model_dir)
    version = registry.alias("release")
    if version is None:
        card = ModelCard.load(settings.model_dir)
        return settings.model_dir / card.weights, "shipped", card
    folder = registry.download(version, settings.model_cache_dir)
    card = ModelCard.load(folder)
    return folder / card.weights, version, card


def _update_run(settings: Settings, run_id: str, **fields: Any) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        row = session.get(TrainingRun, run_id)
        if row is not None:
            for key, value in fields.items():
                setattr(row, key, value)


def run_training(run_id: str, *, settings: Settings, store: PhotoStore) -> str:
    """Execute one TrainingRun; returns the registered version. Idempotent for finished runs."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from detector.training import train

    with session_scope(settings.sqlalchemy_url) as session:
        row = session.get(TrainingRun, run_id)
        if row is None:
            raise LookupError(f"training run {run_id} does not exist")
        if row.status == "succeeded" and row.model_version:
            return row.model_version
        params = dict(row.params)
        row.status, row.progress, row.error = "running", 0.0, None
        registry = Registry.from_settings(settings)
        base = params.get("base_data")
        snapshot = build_retraining_snapshot(
            session=session, store=store, settings=settings, base_data=Path(base) if base else None
        )
        row.dataset_digest = snapshot.digest

    epochs = int(params.get("epochs", settings.train_epochs))
    imgsz = int(params.get("imgsz", settings.train_imgsz))
    checkpoint, parent, parent_card = _starting_point(registry, settings, str(params.get("from", "release")))
    client = registry.client
    mlrun = client.create_run(registry.experiment_id(), run_name=f"retrain-{run_id[:8]}", tags={"kind": "retrain"})
    mlrun_id = mlrun.info.run_id
    _update_run(settings, run_id, mlflow_run_id=mlrun_id)
    try:
        recipe_params = {
            "epochs": epochs,
            "imgsz": imgsz,
            "from": params.get("from", "release"),
            "parent_version": parent,
            "dataset_digest": snapshot.digest,
            "device": settings.train_device,
        }
        for key, value in recipe_params.items():
            client.log_param(mlrun_id, key, str(value))
        dataset = Dataset(
            name=snapshot.path.name, digest=snapshot.digest[:36], source_type="local", source=snapshot.path.as_uri()
        )
        client.log_inputs(
            mlrun_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
        )

        def on_epoch(row: dict[str, Any]) -> None:
            step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    client.log_metric(mlrun_id, key.replace("(", "_").replace(")", ""), float(value), step=step)
            metrics = {k: round(float(v), 5) for k, v in row.items() if isinstance(v, int | float)}
            _update_run(settings, run_id, progress=min(0.95, step / max(epochs, 1)), metrics=metrics)

        with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
            extra: dict[str, Any] = {"plots": False}
            extra.update(params.get("extra") or {})
            result = train(
                snapshot.path,
                from_checkpoint=checkpoint,
                epochs=epochs,
                imgsz=imgsz,
                batch=int(params.get("batch", 8)),
                device=settings.train_device,
                workers=0,
                out_dir=Path(tmp) / "run",
                extra=extra,
                on_epoch=on_epoch,
            )
            model_dir = Path(tmp) / "model"
            model_dir.mkdir()
            shutil.copy2(result.best_weights, model_dir / "weights.pt")
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            card = replace(
                parent_card,
                version=f"retrain-{stamp}-{run_id[:6]}",
                weights="weights.pt",
                metrics={k: round(float(v), 5) for k, v in result.final_metrics.items() if isinstance(v, int | float)},
            )
            card.save(model_dir)
            onnx = ensure_onnx(model_dir / "weights.pt", settings.model_cache_dir, card.imgsz)
            shutil.copy2(onnx, model_dir / "model.onnx")
            client.log_artifact(mlrun_id, str(Path(tmp) / "run" / "recipe.json"))
            for plot in sorted((Path(tmp) / "run" / "run").glob("*.png")):
                client.log_artifact(mlrun_id, str(plot), artifact_path="plots")
            version = registry.register_folder(
                run_id=mlrun_id,
                model_dir=model_dir,
                tags={
                    "dataset_digest": snapshot.digest,
                    "parent_version": parent,
                    "git_commit": git_commit(),
                    "card_version": card.version,
                    "training_run": run_id,
                },
            )
        client.set_terminated(mlrun_id, "FINISHED")
    except Exception as exc:
        client.set_terminated(mlrun_id, "FAILED")
        _update_run(settings, run_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with session_scope(settings.sqlalchemy_url) as session:
        move_alias(
            session=session,
            registry=registry,
            alias="poc",
            version=version,
            actor=f"training-run:{run_id}",
            reason="new candidate from retraining",
            figures={},
        )
        row = session.get(TrainingRun, run_id)
        assert row is not None
        row.status, row.progress, row.model_version = "succeeded", 1.0, version
    return version

