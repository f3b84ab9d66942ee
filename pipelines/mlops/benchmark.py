"""The frozen benchmark the promotion gate judges on: a labelled split that no candidate is ever trained on.

Production points `SKINTROUBLE_BENCHMARK_DIR` at a held-out YOLO folder or snapshot; embedded defaults build a
fixed set of synthetic photos once. Figures are cached per (version, benchmark content), so a model is scored
once per benchmark and an edited benchmark can never be confused with the old one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from detector.datasets.snapshot import sha256_of
from detector.evaluation import Predictor, evaluate, load_labelled_images
from detector.findings import Detection
from infra.settings import Settings

SMOKE_BENCHMARK_SEEDS = range(10_000, 10_008)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class VersionTags(Protocol):
    """What the cache needs from the registry (the MLflow `Registry` is one)."""

    def version_tags(self, version: str) -> dict[str, str]: ...

    def tag(self, version: str, key: str, value: str) -> None: ...

    def download(self, version: str, cache_dir: Path) -> Path: ...


def benchmark_dir(settings: Settings) -> Path:
    """The configured benchmark folder; on embedded defaults a synthetic one generated once under var/."""
    if settings.benchmark_dir is not None:
        if not settings.benchmark_dir.is_dir():
            raise FileNotFoundError(f"benchmark folder {settings.benchmark_dir} does not exist")
        return settings.benchmark_dir
    folder = settings.var_path / "benchmark-synthetic"
    if not (folder / "labels").is_dir():
        from detector.synthetic import write_yolo_dataset

        tmp = folder.with_name(".benchmark-synthetic.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        write_yolo_dataset(tmp, SMOKE_BENCHMARK_SEEDS)
        tmp.rename(folder)
    return folder


BENCHMARK_INFO = "benchmark.json"


def build_benchmark(src: Path, out: Path, *, split: str | None = "valid", part: str | None = "report") -> Path:
    """Freeze a real labelled YOLO folder (one split, one part of `detector.datasets.splits`) into `out`.

    Images and label files are copied byte for byte (`images/`, `labels/`, `data.yaml` names), with a
    `benchmark.json` that says where they came from and the content digest the gate will quote. Point
    `SKINTROUBLE_BENCHMARK_DIR` at `out`. The report part is the right default: no choice saw it.
    """
    from detector.datasets.splits import select_part

    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: a frozen benchmark is never rewritten in place")
    images, class_names = load_labelled_images(src, split)
    if not images:
        raise FileNotFoundError(f"no labelled images in {src} (split {split!r})")
    chosen = select_part([item.path for item in images], part)  # type: ignore[arg-type]
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    for image in chosen:
        label = image.parent.parent / "labels" / f"{image.stem}.txt"
        shutil.copy2(image, out / "images" / image.name)
        if label.is_file():
            shutil.copy2(label, out / "labels" / label.name)
        else:
            (out / "labels" / f"{image.stem}.txt").write_text("", encoding="utf-8")
    names = "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(class_names))
    (out / "data.yaml").write_text(f"path: .\nval: images\nnames:\n{names}", encoding="utf-8")
    info = {
        "source": str(src.resolve()),
        "split": split,
        "part": part,
        "images": len(chosen),
        "digest": benchmark_digest(out),
    }
    (out / BENCHMARK_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | {".txt"})


def image_hashes(folder: Path) -> set[str]:
    """sha256 of every benchmark image: retraining drops any sample with the same bytes."""
    return {sha256_of(p) for p in _files(folder) if p.suffix.lower() in IMAGE_SUFFIXES}


def benchmark_digest(folder: Path) -> str:
    """Content digest of images and labels (relative names included), short enough for a tag key."""
    h = hashlib.sha256()
    for path in _files(folder):
        h.update(f"{path.relative_to(folder).as_posix()}\0{sha256_of(path)}\n".encode())
    return h.hexdigest()[:16]


def cache_key(folder: Path) -> str:
    return f"benchmark.{benchmark_digest(folder)}"


class ClassAgnostic:
    """Every finding counts as a lesion, so models with different class lists are compared on one footing."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def predict(self, image: np.ndarray, conf: float | None = None) -> Detection:
        detection = self.predictor.predict(image, conf=conf)
        return replace(detection, findings=[replace(f, label="lesion") for f in detection.findings])


def score(model_dir: Path, folder: Path, settings: Settings) -> dict[str, float]:
    """Class-agnostic mAP50 and grade accuracy through the serving path (`Detector.predict`, as users get it)."""
    from detector.onnx_runtime import Detector

    detector = Detector.load(model_dir, settings.model_cache_dir, threads=settings.detector_threads)
    images, _ = load_labelled_images(folder, None)
    if not images:
        raise FileNotFoundError(f"benchmark folder {folder} holds no labelled images")
    result = evaluate(
        ClassAgnostic(detector),
        images,
        class_names=["lesion"],  # class-agnostic: every finding is a lesion, whatever the model calls it
        operating_conf=detector.card.operating_conf,
        served_counts=True,
    )
    return {
        "mAP50": round(float(result.summary.get("mAP50", 0.0)), 5),
        "grade_accuracy": round(float(result.summary.get("grade_accuracy", 0.0)), 5),
        "images": float(result.summary["images"]),
    }


def figures(registry: VersionTags, version: str, settings: Settings) -> dict[str, float]:
    """A version's benchmark figures, computed once and then read back from its MLflow tags."""
    folder = benchmark_dir(settings)
    key = cache_key(folder)
    cached = registry.version_tags(version).get(key)
    if cached:
        return dict(json.loads(cached))
    result = score(registry.download(version, settings.model_cache_dir), folder, settings)
    registry.tag(version, key, json.dumps(result))
    return result
