"""Erasure beyond the case row: retraining snapshots and MLflow artefacts that hold an erased photo.

Deleting a case (DELETE /v1/analyses/{id}) already removes its row, labels and stored photo and leaves a
tombstone so no later snapshot includes it. Copies made earlier are handled here, in two steps:

1. `revoke_for_case`, in the deletion's own transaction: every registered snapshot holding the case is marked
   revoked, so from the commit on no training run can use it (the API refuses it, the worker re-checks).
2. `purge_revoked`, on the machine that holds the snapshots (the `training` queue's worker; also run at the
   start of every training run as a safety net): each revoked snapshot's folder is removed, and the MLflow runs
   trained on it lose any artefact that could embed a photo (image mosaics) and are tagged `dataset_revoked`,
   as are the model versions they registered.

What a model already trained on the photo keeps (docs/privacy.md): its weights were fitted with the photo and
cannot un-learn it; no photo, label or case id is stored in the weights or the model card. The version is tagged
`dataset_revoked` so an ML engineer can retrain without the case and retire it.
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path

from sqlalchemy.orm import Session

from detector.datasets.snapshot import MANIFEST, load_snapshot
from infra.db.models import DatasetSnapshot
from infra.db.repositories import snapshots as snapshots_repo
from infra.settings import Settings
from pipelines.mlops.datasets import CASE_PREFIX, register_snapshot

log = logging.getLogger(__name__)

# artefact names that may hold photos (Ultralytics' training/validation mosaics and label previews)
PHOTO_ARTEFACT_MARKERS = ("batch", "labels", "mosaic")


def embeds_photos(name: str) -> bool:
    """Whether an artefact file could show training photos (never logged now; removed from older runs)."""
    lowered = name.lower()
    return lowered.endswith((".jpg", ".jpeg", ".png", ".webp")) and any(m in lowered for m in PHOTO_ARTEFACT_MARKERS)


def _local_snapshots_holding(settings: Settings, case_id: str) -> list[Path]:
    """Snapshot folders under var/datasets whose manifest lists the case (covers snapshots never registered)."""
    root = settings.var_path / "datasets"
    image_id = f"{CASE_PREFIX}{case_id}"
    found = []
    for manifest in sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []:
        try:
            images = json.loads(manifest.read_text(encoding="utf-8")).get("images", {})
        except (OSError, ValueError):
            continue
        if any(entry.get("id") == image_id for entry in images.values()):
            found.append(manifest.parent)
    return found


def revoke_for_case(*, session: Session, settings: Settings, case_id: str) -> list[str]:
    """Revoke every snapshot holding the case, inside the caller's transaction; returns their ids."""
    reason = f"holds erased case {case_id}"
    for folder in _local_snapshots_holding(settings, case_id):
        register_snapshot(session=session, snapshot=load_snapshot(folder), source="retrain")
    rows = snapshots_repo.holding_case(session=session, case_id=case_id)
    for row in rows:
        snapshots_repo.revoke(session=session, row=row, reason=reason)
    return [row.id for row in rows]


def _remove_folder(row: DatasetSnapshot) -> bool:
    """Remove a revoked snapshot's folder, only if it still is that snapshot (manifest digest matches)."""
    folder = Path(row.path)
    if not (folder / MANIFEST).is_file():
        return False
    try:
        if load_snapshot(folder).digest != row.digest:
            log.warning("not removing %s: its manifest is not snapshot %s", folder, row.id)
            return False
    except (OSError, ValueError):
        return False
    for path in [folder, *folder.rglob("*")]:  # snapshots are read-only on disk
        path.chmod(path.stat().st_mode | stat.S_IWUSR | (stat.S_IXUSR if path.is_dir() else 0))
    shutil.rmtree(folder)
    return True


def purge_revoked(*, session: Session, settings: Settings, mlflow: bool = True) -> dict[str, int]:
    """Remove every revoked snapshot's copy on this machine and clean the MLflow runs trained on it."""
    removed = cleaned = 0
    rows = snapshots_repo.revoked(session=session)
    for row in rows:
        removed += int(_remove_folder(row))
    if mlflow and rows:
        try:
            cleaned = _clean_mlflow(settings, {row.digest: row.revoked_reason or "revoked" for row in rows})
        except Exception as exc:  # the registry may be down: the next purge retries
            log.warning("MLflow clean-up after erasure failed: %s", type(exc).__name__)
    if removed or cleaned:
        log.info("erasure: removed %d snapshot folder(s), cleaned %d MLflow run(s)", removed, cleaned)
    return {"snapshots_removed": removed, "runs_cleaned": cleaned}


def _clean_mlflow(settings: Settings, revoked: dict[str, str]) -> int:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from pipelines.mlops.registry import Registry

    registry = Registry.from_settings(settings)
    client = registry.client
    cleaned = 0
    for digest, reason in revoked.items():
        runs = client.search_runs([registry.experiment_id()], filter_string=f"tags.dataset_digest = '{digest}'")
        for run in runs:
            if run.data.tags.get("dataset_revoked"):
                continue
            repo = get_artifact_repository(run.info.artifact_uri)
            for path in _artefact_paths(client, run.info.run_id):
                if embeds_photos(path):
                    repo.delete_artifacts(path)
            client.set_tag(run.info.run_id, "dataset_revoked", reason)
            cleaned += 1
        for version in registry.versions():
            if version.tags.get("dataset_digest") == digest and not version.tags.get("dataset_revoked"):
                registry.tag(version.version, "dataset_revoked", reason)
    return cleaned


def _artefact_paths(client, run_id: str, path: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    paths: list[str] = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            if item.path != "model":  # the registered model folder holds weights, never photos
                paths.extend(_artefact_paths(client, run_id, item.path))
        else:
            paths.append(item.path)
    return paths


def request_purge() -> None:
    """After a deletion's commit: ask the training machine to purge now (beat retries hourly if this is lost)."""
    from pipelines.tasks.app import enqueue_task

    try:
        enqueue_task("training.purge_erased")
    except Exception as exc:  # the deletion stands; the revoked snapshots are refused and purged later
        log.warning("could not queue the erasure purge (%s); the hourly purge will do it", type(exc).__name__)
