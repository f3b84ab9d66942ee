"""Dataset statistics: what a reviewer checks before training on a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.datasets.snapshot import Snapshot, read_labels

SIZE_BINS: tuple[float, ...] = (0, 8, 16, 24, 32, 48, 64, 96, 128, 256, float("inf"))


@dataclass(frozen=True)
class DatasetStats:
    """Counts per split and class, boxes per image and box sizes (sqrt of area, in pixels)."""

    images: dict[str, int]
    class_counts: dict[str, int]
    boxes_per_image: dict[str, float]
    box_sides: np.ndarray
    size_histogram: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "class_counts": self.class_counts,
            "boxes_per_image": self.boxes_per_image,
            "size_histogram": self.size_histogram,
        }


def _bin_label(lo: float, hi: float) -> str:
    return f">={lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}"


def compute_stats(snapshot: Snapshot) -> DatasetStats:
    names = snapshot.class_names
    class_counts = dict.fromkeys(names, 0)
    per_image: list[int] = []
    sides: list[float] = []
    images: dict[str, int] = {}
    for image in snapshot.images():
        split = snapshot.manifest["images"][str(image.relative_to(snapshot.path))]["split"]
        images[split] = images.get(split, 0) + 1
        boxes = read_labels(snapshot, image)
        per_image.append(len(boxes))
        for box in boxes:
            class_counts[names[box.label]] += 1
            sides.append(float(np.sqrt(max(box.x2 - box.x1, 0.0) * max(box.y2 - box.y1, 0.0))))
    counts = np.asarray(per_image, dtype=np.float64)
    side_arr = np.asarray(sides, dtype=np.float64)
    hist, _ = np.histogram(side_arr, bins=np.asarray(SIZE_BINS))
    return DatasetStats(
        images=images,
        class_counts=class_counts,
        boxes_per_image={
            "mean": float(counts.mean()) if len(counts) else 0.0,
            "median": float(np.median(counts)) if len(counts) else 0.0,
            "max": float(counts.max()) if len(counts) else 0.0,
            "empty_images": int((counts == 0).sum()),
        },
        box_sides=side_arr,
        size_histogram={
            _bin_label(lo, hi): int(n) for lo, hi, n in zip(SIZE_BINS[:-1], SIZE_BINS[1:], hist, strict=True)
        },
    )


def stats_png_path(snapshot: Snapshot) -> Path:
    """Next to the snapshot, not inside it: snapshots are read-only and their digest must not change."""
    return snapshot.path.parent / f"{snapshot.path.name}.stats.png"


def save_histogram(stats: DatasetStats, path: Path, title: str = "") -> Path:
    """Box-size and boxes-per-image histograms as one PNG (headless Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sides = stats.box_sides
    axes[0].hist(sides, bins=min(60, max(len(sides), 1)), color="#4477aa")
    axes[0].axvline(32, color="#cc3311", linestyle="--", label="32 px (small)")
    axes[0].set(xlabel="box side sqrt(w*h) [px]", ylabel="boxes", title="box sizes")
    axes[0].legend()
    labels = list(stats.class_counts)
    axes[1].bar(range(len(labels)), [stats.class_counts[k] for k in labels], color="#228833")
    axes[1].set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    axes[1].set(ylabel="boxes", title="class counts")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
