"""Dataset import (YOLO, VOC, COCO, Label Studio) into immutable content-addressed snapshots."""

from detector.datasets.formats import FORMATS, read_dataset
from detector.datasets.samples import ImportedDataset, LabelledBox, Sample
from detector.datasets.snapshot import (
    Snapshot,
    SnapshotError,
    build_snapshot,
    load_snapshot,
    read_labels,
    samples_from_snapshot,
    verify_snapshot,
)

__all__ = [
    "FORMATS",
    "ImportedDataset",
    "LabelledBox",
    "Sample",
    "Snapshot",
    "SnapshotError",
    "build_snapshot",
    "load_snapshot",
    "read_dataset",
    "read_labels",
    "samples_from_snapshot",
    "verify_snapshot",
]
