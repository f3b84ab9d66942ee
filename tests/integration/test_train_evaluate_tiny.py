"""Train one CPU epoch on 4 synthetic photos, then evaluate through the serving path (ONNX).

Checks the plumbing, not the quality: offline training, recipe record, per-epoch callback,
export + Detector + our metrics and the report files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.datasets import LabelledBox, Sample, build_snapshot
from detector.evaluation import evaluate_and_report, load_labelled_images
from detector.model_card import ModelCard

pytestmark = pytest.mark.slow


def _photo(seed: int) -> tuple[bytes, tuple[LabelledBox, ...]]:
    """A skin-toned 128 px photo with a few dark-red round 'lesions'."""
    rng = np.random.default_rng(seed)
    img = np.full((128, 128, 3), (150, 170, 220), np.uint8)  # BGR skin tone
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    boxes = []
    for _ in range(3 + seed):
        x, y, r = int(rng.integers(15, 113)), int(rng.integers(15, 113)), int(rng.integers(4, 8))
        cv2.circle(img, (x, y), r, (60, 60, 170), -1)
        boxes.append(LabelledBox(0, x - r, y - r, x + r, y + r))
    ok, encoded = cv2.imencode(".jpg", img)
    assert ok
    return encoded.tobytes(), tuple(boxes)


def test_train_one_epoch_then_evaluate(tmp_path: Path) -> None:
    from detector.onnx_runtime import Detector
    from detector.training import train

    samples = []
    for i in range(4):
        data, boxes = _photo(i)
        samples.append(
            Sample(image=data, boxes=boxes, split="train" if i < 2 else "valid", image_id=f"levle{i % 2}_{i}")
        )
    snap = build_snapshot(samples, class_names=["lesion"], root=tmp_path / "snaps", name="tiny", source="test")

    epochs_seen: list[dict[str, object]] = []
    result = train(
        snap.path,
        from_checkpoint=None,
        epochs=1,
        imgsz=64,
        batch=2,
        device="cpu",
        workers=0,
        out_dir=tmp_path / "run",
        extra={"model": "yolov8n-p2.yaml", "mosaic": 0.0},
        on_epoch=epochs_seen.append,
    )
    assert result.best_weights.is_file()
    assert [row["epoch"] for row in epochs_seen] == [1] and len(result.metrics_per_epoch) == 1
    assert "metrics/mAP50(B)" in result.metrics_per_epoch[0]
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recipe["dataset"]["digest"] == snap.digest
    assert recipe["ultralytics_args"]["amp"] is False and recipe["ultralytics_args"]["imgsz"] == 64
    assert recipe["versions"]["ultralytics"]
    # the scale the model learnt, for its card: skin extent of the training photos as seen at imgsz
    assert result.skin_extent_px is not None and 16 <= result.skin_extent_px <= 64
    assert recipe["skin_extent_px"] == result.skin_extent_px
    assert not (snap.path / "labels.cache").exists()  # the snapshot stays untouched

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy2(result.best_weights, model_dir / "tiny.pt")
    ModelCard(version="tiny-1", weights="tiny.pt", class_names=["lesion"], imgsz=64, tile_size=128).save(model_dir)
    detector = Detector.load(model_dir, tmp_path / "cache", threads=1)

    images, _ = load_labelled_images(snap.path, "valid")
    assert [p.path.stem for p in images] == ["levle0_2", "levle1_3"]
    report = evaluate_and_report(detector, images, class_names=["lesion"], operating_conf=0.25, out=tmp_path / "report")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["images"] == 2 and summary["n_gt"] == 5 + 6
    assert 0.0 <= summary["mAP50"] <= 1.0 and 0.0 <= summary["mAP50_95"] <= summary["mAP50"]
    assert summary["graded_images"] == 2 and sum(map(sum, summary["grade_confusion"])) == 2
    assert summary["count_mae"] == pytest.approx(np.mean([abs(r["count"] - r["labelled"]) for r in report.records]))
    assert (tmp_path / "report" / "pr_curve.png").is_file()
    assert (tmp_path / "report" / "confusion_matrix.png").is_file()
    assert len((tmp_path / "report" / "predictions.jsonl").read_text().splitlines()) == 2

    # The CLI command, calibrating the threshold and bands into the card.
    import typer
    from typer.testing import CliRunner

    from detector.cli import register

    app = typer.Typer()
    register(app)
    args = ["evaluate", "--data", str(snap.path), "--model", str(model_dir), "--split", "valid"]
    args += ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cli"), "--calibrate", "--write-card"]
    cli = CliRunner().invoke(app, args)
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.stdout[cli.stdout.index("{") :])
    assert printed["mAP50"] == pytest.approx(summary["mAP50"])
    card = ModelCard.load(model_dir)
    assert card.operating_conf == printed["calibration"]["operating_conf"]
    assert list(card.grade_bands) == printed["calibration"]["grade_bands"]
    assert card.metrics["valid_mAP50"] == pytest.approx(summary["mAP50"], abs=1e-4)
