"""Training data by snapshot id: the snapshots the system built (retraining) or imported (`dataset import`),
registered in the database. Requests name a snapshot id; no path from a request ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from detector.datasets.snapshot import Snapshot, SnapshotError, load_snapshot
from infra.db.models import DatasetSnapshot
from infra.db.repositories import snapshots as snapshots_repo
from pipelines.errors import Refused

CASE_PREFIX = "case_"  # image ids of reviewed cases inside retraining snapshots


class DatasetRefused(Refused):
    """A snapshot id that may not be trained on (`dataset_not_found`, `dataset_revoked`)."""


def case_ids_of(snapshot: Snapshot) -> list[str]:
    """The cases whose photos this snapshot holds."""
    ids = (str(entry.get("id", "")) for entry in snapshot.manifest.get("images", {}).values())
    return sorted(i.removeprefix(CASE_PREFIX) for i in ids if i.startswith(CASE_PREFIX))


def register_snapshot(*, session: Session, snapshot: Snapshot, source: str) -> DatasetSnapshot:
    return snapshots_repo.register(
        session=session,
        snapshot_id=snapshot.path.name,
        digest=snapshot.digest,
        source=source,
        path=str(snapshot.path.resolve()),
        case_ids=case_ids_of(snapshot),
    )


def resolve_for_training(*, session: Session, snapshot_id: str) -> Snapshot:
    """The registered, unrevoked snapshot with this id; DatasetRefused otherwise (unknown and missing look alike)."""
    row = check_available(session=session, snapshot_id=snapshot_id)
    try:
        return load_snapshot(Path(row.path))
    except SnapshotError as exc:
        raise DatasetRefused("dataset_not_found", "No registered dataset snapshot with that id.") from exc


def check_available(*, session: Session, snapshot_id: str) -> DatasetSnapshot:
    """Registered and not revoked: checked before a run is queued, and again by the worker at its start."""
    row = snapshots_repo.get(session=session, snapshot_id=snapshot_id)
    if row is None:
        raise DatasetRefused("dataset_not_found", "No registered dataset snapshot with that id.")
    if row.revoked_at is not None:
        raise DatasetRefused("dataset_revoked", "That snapshot was revoked (it held erased data); choose another.")
    return row


def import_folder(
    *, session: Session, src: Path, root: Path, fmt: str = "yolo", name: str | None = None
) -> DatasetSnapshot:
    """Import a labelled folder as an immutable snapshot under `root` and register it (a deliberate act on the
    command line by someone with access to the machine: the API never takes a path)."""
    from detector.datasets import build_snapshot, read_dataset

    dataset = read_dataset(fmt, src)
    snapshot = build_snapshot(
        dataset.samples,
        class_names=dataset.class_names,
        root=root,
        name=name or src.resolve().name or "dataset",
        source=dataset.source,
        exist_ok=True,
    )
    return register_snapshot(session=session, snapshot=snapshot, source="import")
