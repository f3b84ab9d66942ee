"""The YOLO export trains in Ultralytics as it comes out of the zip: one CPU epoch on six tiny photos, run from
another directory, reading `train` and a `val` split that holds none of the training images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

pytestmark = pytest.mark.slow

SCRIPT = r"""
import io, json, sys, zipfile
from pathlib import Path

tmp = Path(sys.argv[1])
from detector.ultralytics_offline import configure_offline

configure_offline(tmp / "ultralytics")
import cv2
import numpy as np

from infra.db.repositories.labels import ReviewedSample
from pipelines.review.label_export import yolo_files, zip_bytes

photos, samples, rng = {}, [], np.random.default_rng(0)
for n in range(6):
    img = np.full((128, 128, 3), (150, 170, 220), np.uint8)
    boxes = []
    for _ in range(3):
        (x, y), r = (int(v) for v in rng.integers(15, 113, 2)), 6
        cv2.circle(img, (x, y), r, (60, 60, 170), -1)
        boxes.append({"label": "papule", "box": [x - r, y - r, x + r, y + r]})
    photos[f"k{n}"] = cv2.imencode(".jpg", img)[1].tobytes()
    samples.append(ReviewedSample(f"case{n}", f"k{n}", 128, 128, boxes, 1, "derm"))
archive = zip_bytes(yolo_files(samples, ["lesion", "papule"], photos.__getitem__))
zipfile.ZipFile(io.BytesIO(archive)).extractall(tmp / "export")

from ultralytics import YOLO

YOLO("yolov8n.yaml", task="detect").train(
    data=str(tmp / "export" / "data.yaml"), epochs=1, imgsz=64, batch=2, device="cpu", workers=0, plots=False,
    project=str(tmp / "runs"), name="t", exist_ok=True, verbose=False, amp=False,
)
print(json.dumps({"weights": str(next((tmp / "runs").rglob("last.pt")))}))
"""


def test_the_yolo_export_trains_in_ultralytics(tmp_path: Path) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=elsewhere,  # not the export's folder: data.yaml's paths must not depend on the working directory
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert Path(json.loads(run.stdout.strip().splitlines()[-1])["weights"]).exists()
    labels = tmp_path / "export" / "labels"
    assert (labels / "train.cache").exists() and (labels / "val.cache").exists()  # both splits were read
    train = {p.name for p in (tmp_path / "export" / "images" / "train").iterdir()}
    val = {p.name for p in (tmp_path / "export" / "images" / "val").iterdir()}
    assert train and val and not train & val
