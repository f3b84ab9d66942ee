"""Train the lesion detector on a dataset snapshot with a recipe tuned for small lesions.

Wraps Ultralytics (imported lazily, after `configure_offline()`), so nothing is downloaded: no
pretrained weights, fonts or AMP-check models. The snapshot stays untouched: Ultralytics writes its
label cache next to the labels it reads, so it reads symlinks in the run folder instead.
Everything needed to reproduce the run goes to `recipe.json`: recipe, versions and dataset digest.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detector.datasets.snapshot import Snapshot, load_snapshot

DEFAULT_SCRATCH_MODEL = "yolov8n-p2.yaml"

# Lesions are 20-40 px on 640 px photos. Mosaic keeps many per batch; scale jitter stays moderate
# (0.3, not the default 0.5) so lesions are rarely shrunk below what the P2 head (stride 4) resolves;
# no rotation/shear/mixup that would blur tiny boxes; mosaic off for the last epochs to match serving.
SMALL_LESION_RECIPE: dict[str, Any] = {
    "mosaic": 1.0,
    "scale": 0.3,
    "translate": 0.1,
    "degrees": 0.0,
    "shear": 0.0,
    "perspective": 0.0,
    "fliplr": 0.5,
    "flipud": 0.0,
    "mixup": 0.0,
    "copy_paste": 0.0,
    "hsv_h": 0.015,
    "hsv_s": 0.5,
    "hsv_v": 0.3,
    "close_mosaic": 10,
    "optimizer": "AdamW",
    "lr0": 0.002,
    "cos_lr": True,
    "patience": 30,
    "max_det": 300,
    "seed": 0,
    "deterministic": True,
    "single_cls": True,
    "plots": False,
    "val": True,
}

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    best_weights: Path
    metrics_per_epoch: list[dict[str, Any]]
    recipe: dict[str, Any]
    final_metrics: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    skin_extent_px: float | None = None  # the scale this model learnt, for its card (see detector.scale)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("ultralytics", "torch", "torchvision", "numpy", "opencv-python-headless"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "none"
    return versions


def write_data_yaml(snapshot: Snapshot, out_dir: Path, single_cls: bool) -> Path:
    """A data.yaml with absolute paths over symlinked images/labels in `out_dir/data`.

    Without a `valid` split the training images double as validation (small/test runs only).
    """
    data_dir = out_dir / "data"
    for sub in ("images", "labels"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "valid": []}
    for rel, entry in snapshot.manifest["images"].items():
        image = snapshot.path / rel
        link = data_dir / "images" / image.name
        label_link = data_dir / "labels" / f"{image.stem}.txt"
        for target, source in ((link, image), (label_link, snapshot.path / entry["label"])):
            if not target.is_symlink():
                target.symlink_to(source.resolve())
        lists[entry["split"]].append(str(link.absolute()))
    if not lists["train"]:
        raise ValueError(f"snapshot {snapshot.path.name} has no train images")
    for split, paths in lists.items():
        (out_dir / f"{split}.txt").write_text("\n".join(paths or lists["train"]) + "\n", encoding="utf-8")
    names = ["lesion"] if single_cls else snapshot.class_names
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "path": str(out_dir.absolute()),
                "train": str((out_dir / "train.txt").absolute()),
                "val": str((out_dir / "valid.txt").absolute()),
                "names": dict(enumerate(names)),
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return data_yaml


def training_skin_extent(images: list[Path], imgsz: int, limit: int = 400) -> float | None:
    """The median skin extent of training photos as the network sees them (long side resized to `imgsz`).

    This is the scale the model learns lesions at; serving brings every photo's skin to it. An evenly spread
    sample of at most `limit` photos keeps it to a few seconds on big datasets.
    """
    import cv2

    from detector.scale import reference_extent

    step = max(1, len(images) // limit)

    def as_trained() -> Iterator[np.ndarray]:
        for path in images[::step]:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            shrink = imgsz / max(bgr.shape[:2])
            size = (max(1, round(bgr.shape[1] * shrink)), max(1, round(bgr.shape[0] * shrink)))
            interpolation = cv2.INTER_AREA if shrink < 1 else cv2.INTER_LINEAR
            yield cv2.cvtColor(cv2.resize(bgr, size, interpolation=interpolation), cv2.COLOR_BGR2RGB)

    return reference_extent(as_trained())


def build_recipe(
    *, epochs: int, imgsz: int, batch: int, device: str, workers: int, extra: dict[str, Any] | None
) -> dict[str, Any]:
    """The Ultralytics arguments of a run: small-lesion defaults, then `extra` overrides."""
    on_cpu = str(device).lower() == "cpu"
    recipe = {
        **SMALL_LESION_RECIPE,
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "workers": workers,
        "amp": not on_cpu,  # AMP on CPU is slower and its check would fetch a model
        "close_mosaic": min(SMALL_LESION_RECIPE["close_mosaic"], max(epochs // 3, 0)),
    }
    recipe.update({k: v for k, v in (extra or {}).items() if k != "model"})
    return recipe


def train(
    snapshot: Path,
    *,
    from_checkpoint: Path | None,
    epochs: int,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
    workers: int = 2,
    out_dir: Path,
    extra: dict[str, Any] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Fine-tune `from_checkpoint` (or train `extra['model']`, default yolov8n-p2, from scratch).

    `on_epoch` receives one dict per epoch (epoch number, losses, validation metrics) as soon as
    the epoch's validation is done. Raises if the run produced no weights.
    """
    from detector.ultralytics_offline import configure_offline

    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    configure_offline(out_dir / "ultralytics-settings")
    snap = load_snapshot(Path(snapshot))
    recipe = build_recipe(epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers, extra=extra)
    data_yaml = write_data_yaml(snap, out_dir, bool(recipe["single_cls"]))
    if from_checkpoint is not None and not Path(from_checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {from_checkpoint}")  # YOLO() would try to download it
    model_source = (
        str(Path(from_checkpoint).absolute())
        if from_checkpoint
        else str((extra or {}).get("model", DEFAULT_SCRATCH_MODEL))
    )

    from ultralytics import YOLO  # lazy: torch only in training processes

    model = YOLO(model_source, task="detect")
    per_epoch: list[dict[str, Any]] = []
    final: dict[str, Any] = {}

    def _on_fit_epoch_end(trainer: Any) -> None:
        row: dict[str, Any] = {"epoch": int(trainer.epoch) + 1}
        row.update({k: float(v) for k, v in trainer.label_loss_items(trainer.tloss, prefix="train").items()})
        row.update({k: float(v) for k, v in (trainer.metrics or {}).items()})
        if row["epoch"] > int(trainer.epochs):  # the closing validation of best.pt
            final.update(row)
            return
        per_epoch.append(row)
        if on_epoch is not None:
            on_epoch(row)

    model.add_callback("on_fit_epoch_end", _on_fit_epoch_end)
    started = time.time()
    model.train(
        data=str(data_yaml),
        project=str(out_dir),
        name="run",
        exist_ok=True,
        verbose=False,
        **recipe,
    )
    trainer = model.trainer
    best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    if not best.is_file():
        raise RuntimeError(f"training produced no weights in {trainer.wdir}")
    skin_extent = training_skin_extent(snap.images("train"), int(recipe["imgsz"]))
    full_recipe = {
        "ultralytics_args": recipe,
        "skin_extent_px": skin_extent,
        "model": model_source,
        "from_checkpoint": str(from_checkpoint) if from_checkpoint else None,
        "dataset": {"path": str(snap.path), "digest": snap.digest, "class_names": snap.class_names},
        "versions": package_versions(),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "best_weights": str(best),
    }
    (out_dir / "recipe.json").write_text(json.dumps(full_recipe, indent=2) + "\n", encoding="utf-8")
    return TrainResult(best, per_epoch, full_recipe, final, run_dir=out_dir, skin_extent_px=skin_extent)
