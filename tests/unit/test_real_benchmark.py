"""A frozen benchmark built from a real-format labelled folder, and the gate judging on it through `predict`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.datasets.splits import split_names
from detector.model_card import ModelCard
from detector.onnx_runtime import Detector
from infra.settings import Settings, get_settings
from pipelines.mlops import benchmark, promotion
from tests.unit.test_detector_inference import FakeSession
from tests.unit.test_promotion import MemoryRegistry

LESION_XYWH = (100.0, 120.0, 20.0, 20.0)  # network pixels = photo pixels for a 640 px photo


def acne04_like(root: Path, per_grade: int = 3) -> list[str]:
    """A YOLO folder laid out and named like the ACNE04 export, one lesion per photo at LESION_XYWH."""
    names = []
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for grade in range(4):
            for i in range(per_grade):
                stem = f"levle{grade}_{i}_jpg.rf.{grade}{i}ab"
                cv2.imwrite(str(root / split / "images" / f"{stem}.jpg"), np.full((640, 640, 3), 128, np.uint8))
                cx, cy, w, h = (v / 640 for v in LESION_XYWH)
                (root / split / "labels" / f"{stem}.txt").write_text(f"0 {cx} {cy} {w} {h}\n")
                if split == "valid":
                    names.append(f"{stem}.jpg")
    (root / "data.yaml").write_text("names:\n  0: lesion\n")
    return names


def test_benchmark_freezes_the_report_part_of_a_real_folder(tmp_path: Path) -> None:
    names = acne04_like(tmp_path / "src")
    out = benchmark.build_benchmark(tmp_path / "src", tmp_path / "bench", split="valid", part="report")
    copied = sorted(p.name for p in (out / "images").iterdir())
    assert copied == sorted(split_names(names)["report"]) and 0 < len(copied) < len(names)
    assert sorted(p.stem for p in (out / "labels").iterdir()) == sorted(Path(n).stem for n in copied)
    info = json.loads((out / "benchmark.json").read_text())
    assert info["part"] == "report" and info["images"] == len(copied)
    assert info["digest"] == benchmark.benchmark_digest(out)
    with pytest.raises(FileExistsError):
        benchmark.build_benchmark(tmp_path / "src", out)


def test_the_gate_refuses_a_candidate_that_is_worse_on_a_real_benchmark(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acne04_like(tmp_path / "src")
    bench = benchmark.build_benchmark(tmp_path / "src", tmp_path / "bench")
    monkeypatch.setenv("SKINTROUBLE_BENCHMARK_DIR", str(bench))
    get_settings.cache_clear()
    current = get_settings()

    def load(model_dir: Path, cache_dir: Path, *, threads: int | None = None) -> Detector:
        box = LESION_XYWH if Path(model_dir).name == "good" else (400.0, 400.0, 20.0, 20.0)  # worse: misses it
        card = ModelCard(version=Path(model_dir).name, weights="none.pt", class_names=["lesion"], tta_flip=True)
        return Detector(card, FakeSession(box, 0.9))

    monkeypatch.setattr(Detector, "load", staticmethod(load))
    registry = MemoryRegistry(folders=tmp_path)  # no cached tags: figures computed through the serving path
    registry.tags = {"good": {}, "worse": {}}
    registry.holders["release"] = "good"
    verdict = promotion.judge(registry=registry, candidate="worse", alias="release", settings=current)  # type: ignore[arg-type]
    assert verdict.passed is False
    assert verdict.holder is not None and verdict.holder["mAP50"] > verdict.candidate["mAP50"]
    assert verdict.candidate["images"] == len(list((bench / "images").iterdir()))
    assert verdict.benchmark == benchmark.cache_key(bench)
    registry.holders["release"] = "worse"
    assert promotion.judge(registry=registry, candidate="good", alias="release", settings=current).passed  # type: ignore[arg-type]
