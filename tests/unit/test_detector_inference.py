"""The serving detector: photo-space boxes from tiles, the operating threshold, grading, no torch in serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.grading import distance_to_boundary, grade_from_count
from detector.model_card import ModelCard
from detector.onnx_runtime import Detector
from infra.settings import REPO_ROOT


class FakeSession:
    """Returns one lesion per tile input at a fixed place in network pixels, with a known score."""

    def __init__(self, box_xywh: tuple[float, float, float, float], score: float) -> None:
        self.box = box_xywh
        self.score = score
        self.calls: list[tuple[int, ...]] = []

    def run(self, _names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feed.values()))
        self.calls.append(batch.shape)
        n = batch.shape[0]
        out = np.zeros((n, 5, 10), np.float32)
        out[:, 0:4, 0] = self.box
        out[:, 4, 0] = self.score
        return [out]


def fake_detector(
    score: float = 0.9, box: tuple[float, float, float, float] = (100.0, 120.0, 20.0, 20.0), **card: object
) -> tuple[Detector, FakeSession]:
    session = FakeSession(box, score)
    base = {
        "version": "fake-1",
        "weights": "none.pt",
        "class_names": ["lesion"],
        "operating_conf": 0.25,
        "tta_flip": False,
    }
    return Detector(ModelCard(**{**base, **card}), session), session  # type: ignore[arg-type]


def test_a_small_photo_runs_in_one_pass_and_keeps_photo_coordinates() -> None:
    detector, session = fake_detector()
    detection = detector.predict(np.zeros((640, 640, 3), np.uint8))
    assert [f.box for f in detection.findings] == [pytest.approx((90.0, 110.0, 110.0, 130.0))]
    assert detection.lesion_count == 1 and detection.severity.grade == 0 and detection.model_version == "fake-1"
    assert sum(shape[0] for shape in session.calls) == 2  # normal + mirrored pass (uncertainty), one tile each


def test_large_photos_are_tiled_and_tile_boxes_map_back_to_the_photo() -> None:
    from detector.tiling import make_tiles

    detector, _ = fake_detector(box=(320.0, 320.0, 20.0, 20.0))  # one lesion in the middle of every tile
    detection = detector.predict(np.zeros((1280, 1900, 3), np.uint8))
    tiles = make_tiles(1280, 1900, 640, 0.2)
    assert detection.extras["tiles"] == len(tiles) > 1
    boxes = sorted(f.box for f in detection.findings)
    expected = sorted((t.x0 + 310.0, t.y0 + 310.0, t.x0 + 330.0, t.y0 + 330.0) for t in tiles)
    assert boxes == [pytest.approx(b) for b in expected]


def test_conf_lists_more_findings_but_count_and_grade_stay_at_the_operating_threshold() -> None:
    detector, _ = fake_detector(score=0.1, operating_conf=0.25)
    default = detector.predict(np.zeros((640, 640, 3), np.uint8))
    low = detector.predict(np.zeros((640, 640, 3), np.uint8), conf=0.05)
    assert default.findings == [] and len(low.findings) == 1
    assert default.lesion_count == low.lesion_count == 0 and default.severity == low.severity


@pytest.mark.parametrize(("count", "grade"), [(0, 0), (5, 0), (6, 1), (20, 1), (21, 2), (50, 2), (51, 3), (400, 3)])
def test_grade_bands(count: int, grade: int) -> None:
    assert grade_from_count(count).grade == grade
    assert grade_from_count(count).label == ("mild", "moderate", "severe", "very_severe")[grade]


def test_distance_to_boundary_and_band_validation() -> None:
    assert distance_to_boundary(5) == 1 and distance_to_boundary(6) == 1 and distance_to_boundary(12) == 7
    with pytest.raises(ValueError):
        grade_from_count(-1)
    with pytest.raises(ValueError):
        grade_from_count(3, (20, 5, 50))


def test_the_serving_import_path_does_not_load_torch() -> None:
    code = "import sys, api.main, detector.onnx_runtime, pipelines.cases.analysis; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)


@pytest.mark.slow
def test_the_shipped_model_loads_from_its_cached_export_and_predicts(tmp_path: Path) -> None:
    from detector.export import ensure_onnx

    cache = REPO_ROOT / "var" / "cache" / "models"
    card = ModelCard.load(REPO_ROOT / "detector" / "weights")
    onnx = ensure_onnx(REPO_ROOT / "detector" / "weights" / card.weights, cache, card.imgsz)
    stamp = onnx.stat().st_mtime_ns
    detector = Detector.load(REPO_ROOT / "detector" / "weights", cache, threads=2)
    assert onnx.stat().st_mtime_ns == stamp  # the second load reuses the export
    rng = np.random.default_rng(1)
    for shape in ((640, 640, 3), (1500, 2000, 3)):
        detection = detector.predict(rng.integers(0, 255, shape, dtype=np.uint8))
        assert 0.0 <= detection.uncertainty <= 1.0 and detection.model_version == card.version
        for f in detection.findings:
            assert 0 <= f.box[0] < f.box[2] <= shape[1] and 0 <= f.box[1] < f.box[3] <= shape[0]
            assert f.confidence >= card.operating_conf


def test_model_card_round_trips_and_refuses_unknown_keys(tmp_path: Path) -> None:
    card = ModelCard.load(REPO_ROOT / "detector" / "weights")
    card.save(tmp_path / "model.json")
    assert ModelCard.load(tmp_path) == card
    (tmp_path / "model.json").write_text('{"version": "x", "weights": "w.pt", "class_names": ["l"], "upscal": 2}')
    with pytest.raises(ValueError, match="upscal"):
        ModelCard.load(tmp_path)
    with pytest.raises(ValueError, match="grade_bands"):
        ModelCard(version="x", weights="w.pt", class_names=["l"], grade_bands=(20, 5, 50))


def test_configure_offline_is_idempotent_and_keeps_other_settings(tmp_path: Path) -> None:
    code = (
        "import os, sys, json, pathlib; from detector.ultralytics_offline import configure_offline;"
        f"d = pathlib.Path({str(tmp_path)!r}); f = d / 'Ultralytics' / 'settings.json';"
        "f.parent.mkdir(parents=True); f.write_text(json.dumps({'runs_dir': '/x', 'sync': True}));"
        "configure_offline(d); first = f.read_text(); configure_offline(d);"
        "assert f.read_text() == first; s = json.loads(first);"
        "assert s['sync'] is False and s['runs_dir'] == '/x';"
        "assert os.environ['YOLO_OFFLINE'] == '1' and os.environ['YOLO_CONFIG_DIR'] == str(d);"
        "assert 'ultralytics' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


def test_ensure_onnx_exports_once_per_weights_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detector import export

    calls: list[Path] = []

    def fake_export(weights: Path, target: Path, imgsz: int) -> None:
        calls.append(target)
        target.write_bytes(b"onnx")

    monkeypatch.setattr(export, "_export_in_subprocess", fake_export)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"first")
    first = export.ensure_onnx(weights, tmp_path / "cache", 640)
    stamp = first.stat().st_mtime_ns
    assert export.ensure_onnx(weights, tmp_path / "cache", 640) == first
    assert first.stat().st_mtime_ns == stamp and len(calls) == 1
    weights.write_bytes(b"retrained")  # new content -> new key -> one more export
    assert export.ensure_onnx(weights, tmp_path / "cache", 640) != first and len(calls) == 2
