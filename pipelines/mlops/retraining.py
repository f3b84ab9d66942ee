"""Retraining: reviewed labels (+ base data) -> immutable snapshot -> fine-tune -> MLflow run -> new `poc` version.

The logic behind the `training.retrain` task; it runs wherever the `training` queue is consumed (a GPU machine
in production, the embedded worker in development).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from detector.datasets import LabelledBox, Sample, build_snapshot
from detector.datasets.snapshot import Snapshot, samples_from_snapshot, sha256_of
from detector.export import ensure_onnx
from detector.model_card import ModelCard
from infra.db.models import TrainingRun
from infra.db.repositories import audit, training_runs
from infra.db.repositories import cases as cases_repo
from infra.db.repositories import taxonomy as taxonomy_repo
from infra.db.repositories.audit import Actor
from infra.db.repositories.labels import reviewed_samples
from infra.db.unit_of_work import UnitOfWork, session_scope
from infra.settings import Settings
from infra.storage import PhotoStore
from pipelines.cases.photos import srgb_jpeg
from pipelines.errors import Refused
from pipelines.mlops import benchmark, erasure
from pipelines.mlops.datasets import CASE_PREFIX, check_available, register_snapshot, resolve_for_training
from pipelines.mlops.promotion import move_alias
from pipelines.mlops.registry import Registry, git_commit, log_model_run

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
        actor=Actor(id=None, role="system", name="bootstrap"),
        reason="shipped model registered as the first release",
        figures=card.metrics,
    )
    return version


def model_class_index(label: str, to_model: dict[str, str | None]) -> int | None:
    """The training class of a reviewed box: its taxonomy label's model class (a label outside the taxonomy is
    taken as a model class name); None for labels that train nothing (non-acne marks such as scars)."""
    model_class = to_model.get(label, label)
    return CLASS_NAMES.index(model_class) if model_class in CLASS_NAMES else None


class QueueUnavailable(Refused):
    """The run was recorded but the training queue did not take it; the run is marked failed."""

    def __init__(self, run_id: str) -> None:
        super().__init__("queue_unavailable", "The training queue is unavailable.", run_id=run_id)


def request_run(*, uow: UnitOfWork, actor: Actor, params: dict[str, Any], enqueue: bool = True) -> TrainingRun:
    """Start a retraining run for whichever face asks (API, CLI, beat): check its snapshot, record the run and
    who asked in one commit, then send it to the training queue (`enqueue`) or leave it for the caller to run.

    Raises `DatasetRefused` before anything is written, `QueueUnavailable` (the run marked failed) when the
    queue cannot take it, so no run stays `queued` with no message behind it.
    """
    if params.get("dataset") is not None:
        check_available(session=uow.session, snapshot_id=params["dataset"])
    row = training_runs.create(session=uow.session, requested_by=actor.id or actor.name, params=params)
    audit.record(session=uow.session, action="training.started", actor=actor, target=row.id, details=params)
    uow.commit()
    if enqueue:
        from pipelines.tasks.app import enqueue_task

        try:
            enqueue_task("training.retrain", row.id)
        except Exception as exc:
            row.status, row.error = "failed", "could not be queued"
            uow.commit()
            raise QueueUnavailable(row.id) from exc
    return row


def labels_since_last_run(session: Session) -> int:
    return training_runs.labels_since(session=session, since=training_runs.last_started_at(session=session))


def without_benchmark(samples: list[Sample], settings: Settings) -> tuple[list[Sample], int]:
    """Drop samples whose bytes are a benchmark image: the gate is only honest on photos never trained on."""
    frozen = benchmark.image_hashes(benchmark.benchmark_dir(settings))
    kept = [s for s in samples if sha256_of(s.image) not in frozen]
    return kept, len(samples) - len(kept)


def build_retraining_snapshot(
    *, session: Session, store: PhotoStore, settings: Settings, base: Snapshot | None
) -> Snapshot:
    """Base snapshot + every finished review, minus deleted cases; identical content gives the same snapshot.

    Reviewed cases always come fresh from the database (current labels, erasures applied), never from the base:
    a base that is itself a retraining snapshot contributes only its non-case images."""
    samples: list[Sample] = []
    if base is not None:
        samples.extend(s for s in samples_from_snapshot(base) if not s.name().startswith(CASE_PREFIX))
    to_model = taxonomy_repo.model_class_map(session=session)
    for item in reviewed_samples(session):
        boxes = tuple(
            LabelledBox(index, *[float(v) for v in b["box"]])
            for b in item.boxes
            if (index := model_class_index(b["label"], to_model)) is not None
        )
        # training reads pixels with OpenCV, which ignores ICC profiles: a phone's wide-gamut photo goes in as sRGB
        samples.append(
            Sample(image=srgb_jpeg(store.get(item.photo_key)), boxes=boxes, image_id=f"{CASE_PREFIX}{item.case_id}")
        )
    samples, leaked = without_benchmark(samples, settings)
    if leaked:
        log.warning("left %d benchmark photo(s) out of the retraining data", leaked)
    if not samples:
        raise ValueError("nothing to train on: no base data and no reviewed labels")
    exclude = {f"{CASE_PREFIX}{case_id}" for case_id in cases_repo.deleted_ids(session=session)}
    snapshot = build_snapshot(
        samples,
        class_names=CLASS_NAMES,
        root=settings.var_path / "datasets",
        name="retrain",
        source="review",
        exclude=exclude,
        exist_ok=True,
    )
    register_snapshot(session=session, snapshot=snapshot, source="retrain")
    return snapshot


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


def plot_metrics(rows: list[dict[str, Any]], out: Path) -> Path:
    """Per-epoch losses and validation metrics as one PNG: the curves an engineer checks first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in rows for k, v in row.items() if k != "epoch" and isinstance(v, int | float)})
    losses = [k for k in keys if "loss" in k]
    scores = [k for k in keys if k not in losses]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, group, title in ((axes[0], losses, "losses"), (axes[1], scores, "validation")):
        for key in group:
            ax.plot([r["epoch"] for r in rows if key in r], [r[key] for r in rows if key in r], marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if group:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _update_run(settings: Settings, run_id: str, **fields: Any) -> None:
    with session_scope(settings.sqlalchemy_url) as session:
        row = session.get(TrainingRun, run_id)
        if row is not None:
            for key, value in fields.items():
                setattr(row, key, value)


def _fail(settings: Settings, run_id: str, exc: BaseException) -> None:
    _update_run(settings, run_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])


def _claim(run_id: str, settings: Settings, store: PhotoStore) -> tuple[dict[str, Any], Snapshot] | str:
    """Mark the run running and build its snapshot; a finished run returns its version instead."""
    with session_scope(settings.sqlalchemy_url) as session:
        row = training_runs.get(session=session, run_id=run_id)
        if row is None:
            raise LookupError(f"training run {run_id} does not exist")
        if row.status == "succeeded" and row.model_version:
            return row.model_version
        params = dict(row.params)
        erasure.purge_revoked(session=session, settings=settings)  # copies an erasure could not reach yet
        if params.get("base_data"):  # a run queued before paths were refused: never read a path from a request
            raise ValueError("base_data paths are no longer accepted; `skintrouble dataset register` it, pass its id")
        base = params.get("dataset")
        base_snapshot = resolve_for_training(session=session, snapshot_id=str(base)) if base else None
        snapshot = build_retraining_snapshot(session=session, store=store, settings=settings, base=base_snapshot)
        row.status, row.progress, row.error, row.dataset_digest = "running", 0.0, None, snapshot.digest
    return params, snapshot


def run_training(run_id: str, *, settings: Settings, store: PhotoStore) -> str:
    """Execute one TrainingRun; returns the registered version. Idempotent for finished runs.

    Any failure marks the row failed (with the error) so the beat trigger never waits on a dead run.
    """
    try:
        claimed = _claim(run_id, settings, store)
    except LookupError:
        raise
    except Exception as exc:
        _fail(settings, run_id, exc)
        raise
    if isinstance(claimed, str):
        return claimed
    params, snapshot = claimed
    registry = Registry.from_settings(settings)
    mlrun_id: str | None = None
    try:
        checkpoint, parent, parent_card = _starting_point(registry, settings, str(params.get("from", "release")))
        mlrun_id = registry.client.create_run(
            registry.experiment_id(),
            run_name=f"retrain-{run_id[:8]}",
            tags={"kind": "retrain", "training_run": run_id, "dataset_digest": snapshot.digest},
        ).info.run_id
        _update_run(settings, run_id, mlflow_run_id=mlrun_id)
        version = _train_and_register(
            run_id, mlrun_id, params=params, snapshot=snapshot, registry=registry, settings=settings,
            checkpoint=checkpoint, parent=parent, parent_card=parent_card,
        )  # fmt: skip
        registry.client.set_terminated(mlrun_id, "FINISHED")
    except Exception as exc:
        if mlrun_id is not None:
            registry.client.set_terminated(mlrun_id, "FAILED")
        _fail(settings, run_id, exc)
        raise
    with session_scope(settings.sqlalchemy_url) as session:
        move_alias(
            session=session,
            registry=registry,
            alias="poc",
            version=version,
            actor=Actor(id=f"training-run:{run_id}", role="system", name=f"training-run:{run_id}"),
            reason="new candidate from retraining",
            figures={},
        )
        row = training_runs.get(session=session, run_id=run_id)
        assert row is not None
        row.status, row.progress, row.model_version = "succeeded", 1.0, version
    return version


def _log_dataset(client: Any, mlrun_id: str, snapshot: Snapshot) -> None:
    """The snapshot as the run's input (what `mlflow.log_input` records), named and digested by its content."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    counts = snapshot.manifest.get("counts", {})
    dataset = Dataset(
        name=snapshot.path.name,
        digest=snapshot.digest[:36],  # MLflow's column is 36 characters; the full digest is in the tags
        source_type="local",
        source=json.dumps({"uri": snapshot.path.as_uri(), "digest": snapshot.digest}),
        schema=json.dumps({"class_names": snapshot.class_names}),
        profile=json.dumps({"images": counts}),
    )
    tags = [InputTag("mlflow.data.context", "training"), InputTag("digest_sha256", snapshot.digest)]
    client.log_inputs(mlrun_id, datasets=[DatasetInput(dataset, tags=tags)])


def _train_and_register(
    run_id: str,
    mlrun_id: str,
    *,
    params: dict[str, Any],
    snapshot: Snapshot,
    registry: Registry,
    settings: Settings,
    checkpoint: Path | None,
    parent: str,
    parent_card: ModelCard,
) -> str:
    """Fine-tune, log params/metrics/plots/artefacts into the MLflow run and register the model folder."""
    from detector.training import train

    client = registry.client
    epochs = int(params.get("epochs", settings.train_epochs))
    imgsz = int(params.get("imgsz", settings.train_imgsz))
    recipe_params = {
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": int(params.get("batch", 8)),
        "from": params.get("from", "release"),
        "parent_version": parent,
        "dataset_digest": snapshot.digest,
        "device": settings.train_device,
    }
    for key, value in recipe_params.items():
        client.log_param(mlrun_id, key, str(value))
    _log_dataset(client, mlrun_id, snapshot)

    def on_epoch(row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float):
                client.log_metric(mlrun_id, key.replace("(", "_").replace(")", ""), float(value), step=step)
        metrics = {k: round(float(v), 5) for k, v in row.items() if isinstance(v, int | float)}
        _update_run(settings, run_id, progress=min(0.95, step / max(epochs, 1)), metrics=metrics)

    with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
        work = Path(tmp)
        result = train(
            snapshot.path,
            from_checkpoint=checkpoint,
            epochs=epochs,
            imgsz=imgsz,
            batch=recipe_params["batch"],
            device=settings.train_device,
            workers=0,
            out_dir=work / "run",
            extra=dict(params.get("extra") or {}),
            on_epoch=on_epoch,
        )
        model_dir = work / "model"
        model_dir.mkdir()
        shutil.copy2(result.best_weights, model_dir / "weights.pt")
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        card = replace(
            parent_card,
            version=f"retrain-{stamp}-{run_id[:6]}",
            weights="weights.pt",
            metrics={k: round(float(v), 5) for k, v in result.final_metrics.items() if isinstance(v, int | float)},
            grader=None,  # the parent's grader was fitted on the parent's outputs: refit below or grade by bands
            embedding_ood=None,  # likewise the parent's embedding statistics (refit below writes this model's)
            skin_extent_px=result.skin_extent_px or parent_card.skin_extent_px,  # the scale this run learnt at
        )
        card.save(model_dir)
        onnx = ensure_onnx(model_dir / "weights.pt", settings.model_cache_dir, card.imgsz)
        shutil.copy2(onnx, model_dir / "model.onnx")
        if settings.grader_data_dir is not None:
            from detector.grader_fit import refit_model_folder

            refit = refit_model_folder(
                model_dir, settings.grader_data_dir, "valid", settings.model_cache_dir, settings.detector_threads
            )
            for key, value in refit.summary["report"]["grader (fitted on selection)"].items():
                client.log_metric(mlrun_id, f"grader_report_{key}", float(value))
        client.log_artifact(mlrun_id, str(work / "run" / "recipe.json"))
        client.log_artifact(mlrun_id, str(plot_metrics(result.metrics_per_epoch, work / "metrics.png")), "plots")
        for plot in sorted((work / "run" / "run").glob("*.png")):  # Ultralytics' own, unless extra plots=False
            if not erasure.embeds_photos(plot.name):  # curves only: no photo mosaic leaves the training machine
                client.log_artifact(mlrun_id, str(plot), artifact_path="plots")
        return registry.register_folder(
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
