"""The serving settings shipped with each detector weights file (`model.json` next to the `.pt`).

Everything that changes what `Detector.predict` returns lives here, not in code, so that
calibrating a threshold or a tiling setting is a reviewed data change tied to one model version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CARD_FILE_NAME = "model.json"


def in_folder(path: Path, name: str) -> Path:
    """A model file given as itself or as the model folder holding it under its standard `name`."""
    path = Path(path)
    return path / name if path.is_dir() else path


@dataclass(frozen=True)
class ModelCard:
    """Serving settings of one model version.

    `skin_extent_px` is the long side of the skin region in the training photos as the network saw them
    (written by training): every photo is cropped to its skin region and resized so its skin spans this
    many pixels (`detector.scale`), times `upscale`, unless it is already within `scale_tolerance` of it.
    None (old cards) keeps the photo's own scale.
    The normalised crop runs in one pass when it fits in `tile_size`, otherwise as overlapping tiles. `source_class_names` are the names inside the
    checkpoint, mapped index by index onto `class_names`.
    """

    version: str
    weights: str
    class_names: list[str]
    imgsz: int = 640
    operating_conf: float = 0.25
    iou: float = 0.7
    grade_bands: tuple[int, int, int] = (5, 20, 50)
    tile_size: int = 640
    tile_overlap: float = 0.2
    upscale: float = 1.0
    skin_extent_px: float | None = None
    scale_tolerance: float = 1.0  # skin within this ratio of skin_extent_px: the photo is used as it is
    tta_flip: bool = False
    tile_batch: int = 8
    max_det: int = 300
    uncertainty_band: tuple[float, float] = (0.2, 0.5)
    source_class_names: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    grader: str | None = None  # file beside the card with the fitted grader (detector.grader); None: bands
    # file beside the card with the embedding's out-of-distribution statistics (detector.embedding); None: no check
    embedding_ood: str | None = None

    def __post_init__(self) -> None:
        # JSON gives lists; normalise so cards compare equal however they were built.
        object.__setattr__(self, "grade_bands", tuple(int(b) for b in self.grade_bands))
        object.__setattr__(self, "uncertainty_band", tuple(float(b) for b in self.uncertainty_band))
        object.__setattr__(self, "class_names", [str(n) for n in self.class_names])
        object.__setattr__(self, "source_class_names", [str(n) for n in self.source_class_names])
        self._validate()

    def _validate(self) -> None:
        problems: list[str] = []
        if not self.class_names:
            problems.append("class_names is empty")
        if self.source_class_names and len(self.source_class_names) != len(self.class_names):
            problems.append("source_class_names and class_names differ in length")
        if len(self.grade_bands) != 3 or list(self.grade_bands) != sorted(self.grade_bands):
            problems.append(f"grade_bands must be three ascending counts, got {list(self.grade_bands)}")
        if not 0.0 < self.operating_conf < 1.0:
            problems.append("operating_conf must be in (0, 1)")
        if not 0.0 < self.iou <= 1.0:
            problems.append("iou must be in (0, 1]")
        if self.imgsz % 32 or self.imgsz <= 0:
            problems.append("imgsz must be a positive multiple of 32")
        if self.tile_size < 64:
            problems.append("tile_size must be at least 64")
        if not 0.0 <= self.tile_overlap < 0.9:
            problems.append("tile_overlap must be in [0, 0.9)")
        if not 0.25 <= self.upscale <= 8.0:
            problems.append("upscale must be in [0.25, 8]")
        if self.skin_extent_px is not None and not 32.0 <= self.skin_extent_px <= 8192.0:
            problems.append("skin_extent_px must be in [32, 8192] px")
        if not 1.0 <= self.scale_tolerance <= 2.0:
            problems.append("scale_tolerance must be in [1, 2]")
        if self.tile_batch < 1 or self.max_det < 1:
            problems.append("tile_batch and max_det must be positive")
        low, high = self.uncertainty_band
        if not 0.0 <= low < high <= 1.0:
            problems.append("uncertainty_band must be 0 <= low < high <= 1")
        if problems:
            raise ValueError(f"invalid model card {self.version!r}: " + "; ".join(problems))

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """Read a card; unknown keys are refused so that a typo never silently keeps a default."""
        path = in_folder(path, CARD_FILE_NAME)
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown model card keys {unknown}")
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write the card as stable, diff-friendly JSON."""
        path = in_folder(path, CARD_FILE_NAME)
        data = asdict(self)
        data["grade_bands"] = list(self.grade_bands)
        data["uncertainty_band"] = list(self.uncertainty_band)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def files(self) -> list[str]:
        """Every file this card names beside itself (weights, grader, embedding statistics): what a copy of the
        model folder must carry."""
        return [name for name in (self.weights, self.grader, self.embedding_ood) if name]

    def weights_path(self, model_dir: Path) -> Path:
        """The checkpoint this card describes, resolved against the card's folder."""
        return Path(model_dir) / self.weights
