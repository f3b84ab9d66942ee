"""The in-memory form every importer produces and every snapshot is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Split = Literal["train", "valid"]
SPLITS: tuple[Split, ...] = ("train", "valid")


@dataclass(frozen=True, slots=True)
class LabelledBox:
    """One labelled lesion in pixels of the image as displayed, EXIF orientation applied (x1, y1, x2, y2), class by index."""

    label: int
    x1: float
    y1: float
    x2: float
    y2: float

    def to_yolo(self, width: int, height: int) -> tuple[int, float, float, float, float]:
        """YOLO `class cx cy w h`, normalised and clipped to the image."""
        x1, x2 = sorted((min(max(self.x1, 0.0), width), min(max(self.x2, 0.0), width)))
        y1, y2 = sorted((min(max(self.y1, 0.0), height), min(max(self.y2, 0.0), height)))
        return (
            self.label,
            (x1 + x2) / 2 / width,
            (y1 + y2) / 2 / height,
            (x2 - x1) / width,
            (y2 - y1) / height,
        )

    @classmethod
    def from_yolo(cls, label: int, cx: float, cy: float, w: float, h: float, width: int, height: int) -> LabelledBox:
        return cls(
            label=label,
            x1=(cx - w / 2) * width,
            y1=(cy - h / 2) * height,
            x2=(cx + w / 2) * width,
            y2=(cy + h / 2) * height,
        )


@dataclass(frozen=True)
class Sample:
    """One image with its boxes.

    `image` is a path or the encoded bytes (JPEG/PNG as uploaded: never re-encoded, so the
    snapshot's hash is the upload's hash). `image_id` names the file inside the snapshot (its stem
    is kept, so prefixes such as `levleN_` survive). `split` None lets the snapshot assign one.
    """

    image: Path | bytes
    boxes: tuple[LabelledBox, ...] = field(default_factory=tuple)
    split: Split | None = None
    image_id: str | None = None

    def name(self) -> str:
        if self.image_id:
            return self.image_id
        if isinstance(self.image, bytes):
            raise ValueError("a sample given as bytes needs an image_id")
        return Path(self.image).name


@dataclass(frozen=True)
class ImportedDataset:
    """What an importer returns: samples plus the class names in index order."""

    samples: list[Sample]
    class_names: list[str]
    source: str
