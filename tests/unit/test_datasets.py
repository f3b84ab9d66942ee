"""Dataset importers and snapshots on tiny synthetic datasets written to tmp_path."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from detector.datasets import (
    LabelledBox,
    Sample,
    SnapshotError,
    build_snapshot,
    load_snapshot,
    read_dataset,
    read_labels,
    samples_from_snapshot,
    verify_snapshot,
)
from detector.datasets.snapshot import auto_split
from detector.datasets.stats import compute_stats, save_histogram, stats_png_path

NAMES = ["papule", "pustule"]
# (file name, width, height, [(class, x1, y1, x2, y2) in pixels])
IMAGES = [
    ("levle0_a.jpg", 64, 48, [(0, 4.0, 6.0, 20.0, 18.0), (1, 30.0, 10.0, 60.0, 40.0)]),
    ("levle2_b.jpg", 80, 64, [(1, 10.0, 10.0, 26.0, 30.0)]),
    ("levle1_c.png", 40, 40, []),
]


def _expected_yolo(name: str) -> list[list[float]]:
    _, w, h, boxes = next(item for item in IMAGES if item[0] == name)
    return [[c, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h] for c, x1, y1, x2, y2 in boxes]


def _write_image(path: Path, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _write_images(folder: Path) -> None:
    for seed, (name, w, h, _) in enumerate(IMAGES):
        _write_image(folder / name, w, h, seed)


def make_yolo(root: Path) -> Path:
    _write_images(root / "images")
    (root / "labels").mkdir(parents=True)
    for name, *_ in IMAGES:
        lines = [f"{int(r[0])} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f} {r[4]:.6f}" for r in _expected_yolo(name)]
        (root / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines))
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(NAMES))}))
    return root


def make_voc(root: Path) -> Path:
    _write_images(root / "JPEGImages")
    (root / "Annotations").mkdir(parents=True)
    for name, w, h, boxes in IMAGES:
        objects = "".join(
            f"<object><name>{NAMES[c]}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for c, x1, y1, x2, y2 in boxes
        )
        xml = f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height></size>{objects}</annotation>"
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(xml)
    return root


def make_coco(root: Path) -> Path:
    _write_images(root / "images")
    images, annotations = [], []
    for i, (name, w, h, boxes) in enumerate(IMAGES):
        images.append({"id": i + 10, "file_name": name, "width": w, "height": h})
        for c, x1, y1, x2, y2 in boxes:
            annotations.append(
                {"id": len(annotations), "image_id": i + 10, "category_id": c + 5, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            )
    categories = [{"id": i + 5, "name": n} for i, n in enumerate(NAMES)]
    (root / "annotations.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return root


def make_labelstudio(root: Path) -> Path:
    _write_images(root / "images")
    tasks = []
    for i, (name, w, h, boxes) in enumerate(IMAGES):
        result = [
            {
                "type": "rectanglelabels",
                "original_width": w,
                "original_height": h,
                "value": {
                    "x": x1 / w * 100,
                    "y": y1 / h * 100,
                    "width": (x2 - x1) / w * 100,
                    "height": (y2 - y1) / h * 100,
                    "rotation": 0,
                    "rectanglelabels": [NAMES[c]],
                },
            }
            for c, x1, y1, x2, y2 in boxes
        ]
        tasks.append(
            {
                "id": i,
                "data": {"image": f"/data/upload/1/0a1b2c3d-{name}"},
                "annotations": [{"was_cancelled": True, "result": []}, {"result": result}],
            }
        )
    (root / "export.json").write_text(json.dumps(tasks))
    return root


MAKERS = {"yolo": make_yolo, "voc": make_voc, "coco": make_coco, "labelstudio": make_labelstudio}


def _read_yolo_file(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", list(MAKERS))
def test_import_gives_the_same_yolo_numbers(fmt: str, tmp_path: Path) -> None:
    src = MAKERS[fmt](tmp_path / "src")
    dataset = read_dataset(fmt, src)
    # VOC/Label Studio sort names alphabetically; ours already are, so indices must match too.
    assert dataset.class_names == NAMES
    snap = build_snapshot(
        dataset.samples, class_names=dataset.class_names, root=tmp_path / "snaps", name="t", source=fmt
    )
    assert snap.class_names == NAMES
    assert len(snap.images()) == len(IMAGES)
    for name, *_ in IMAGES:
        got = _read_yolo_file(snap.path / "labels" / f"{Path(name).stem}.txt")
        np.testing.assert_allclose(got, _expected_yolo(name) or np.zeros((0,)), atol=2e-6)


def test_all_formats_give_one_digest(tmp_path: Path) -> None:
    digests = set()
    for fmt, make in MAKERS.items():
        dataset = read_dataset(fmt, make(tmp_path / fmt))
        snap = build_snapshot(
            dataset.samples, class_names=dataset.class_names, root=tmp_path / f"s-{fmt}", name="t", source=fmt
        )
        digests.add(snap.digest)
    assert len(digests) == 1  # same pixels, same boxes, same classes, same splits


def test_digest_is_stable_and_content_addressed(tmp_path: Path) -> None:
    dataset = read_dataset("yolo", make_yolo(tmp_path / "src"))
    first = build_snapshot(dataset.samples, class_names=NAMES, root=tmp_path / "a", name="acne", source="x")
    again = build_snapshot(dataset.samples, class_names=NAMES, root=tmp_path / "b", name="acne", source="y")
    assert first.digest == again.digest
    assert first.path.name == f"acne-{first.digest[:12]}"
    # Reusing an identical snapshot is allowed only when asked for, and returns the existing one.
    with pytest.raises(FileExistsError):
        build_snapshot(dataset.samples, class_names=NAMES, root=tmp_path / "a", name="acne", source="x")
    reused = build_snapshot(
        dataset.samples, class_names=NAMES, root=tmp_path / "a", name="acne", source="x", exist_ok=True
    )
    assert reused.path == first.path
    # Any change of box, class map or split changes the digest.
    moved = [Sample(s.image, s.boxes[:1], s.split) for s in dataset.samples]
    assert build_snapshot(moved, class_names=NAMES, root=tmp_path / "c", name="acne", source="x").digest != first.digest
    renamed = build_snapshot(dataset.samples, class_names=["a", "b"], root=tmp_path / "d", name="acne", source="x")
    assert renamed.digest != first.digest
    valid = build_snapshot(
        dataset.samples, class_names=NAMES, root=tmp_path / "e", name="acne", source="x", split="valid"
    )
    assert valid.digest != first.digest and valid.manifest["counts"] == {"train": 0, "valid": 3}


def test_snapshot_is_read_only_and_verified(tmp_path: Path) -> None:
    dataset = read_dataset("yolo", make_yolo(tmp_path / "src"))
    snap = build_snapshot(dataset.samples, class_names=NAMES, root=tmp_path / "s", name="acne", source="x")
    assert not [p.name for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]  # temp dir renamed away
    for path in [snap.path, *snap.path.rglob("*")]:
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    manifest = json.loads((snap.path / "manifest.json").read_text())
    assert manifest["digest"] == snap.digest and manifest["source"] == "x" and manifest["created_at"]
    entry = manifest["images"]["images/levle0_a.jpg"]
    assert entry["width"] == 64 and entry["height"] == 48 and len(entry["sha256"]) == 64
    assert verify_snapshot(snap.path).digest == snap.digest

    label = snap.path / "labels" / "levle2_b.txt"
    label.chmod(0o644)
    label.write_text("1 0.5 0.5 0.1 0.1\n")
    with pytest.raises(SnapshotError, match="content changed"):
        verify_snapshot(snap.path)


def test_in_memory_samples_with_exclude_and_auto_split(tmp_path: Path) -> None:
    base = read_dataset("yolo", make_yolo(tmp_path / "src"))
    base_snap = build_snapshot(base.samples, class_names=NAMES, root=tmp_path / "s", name="base", source="x")
    _ok, png = cv2.imencode(".png", np.full((50, 100, 3), 200, np.uint8))
    reviewed = Sample(image=png.tobytes(), boxes=(LabelledBox(1, 10, 5, 30, 25),), split="train", image_id="case-42")
    combined = build_snapshot(
        [*samples_from_snapshot(base_snap), reviewed],
        class_names=NAMES,
        root=tmp_path / "s",
        name="retrain",
        source="review",
        exclude={"levle2_b"},
    )
    ids = sorted(Path(p).stem for p in combined.manifest["images"])
    assert ids == ["case-42", "levle0_a", "levle1_c"]
    assert (combined.path / "images" / "case-42.png").read_bytes() == png.tobytes()
    [box] = read_labels(combined, combined.path / "images" / "case-42.png")
    assert (box.label, box.x1, box.y1, box.x2, box.y2) == pytest.approx((1, 10, 5, 30, 25), abs=1e-3)
    # Splits kept from the base snapshot (auto-assigned there from the content hash).
    for entry in combined.manifest["images"].values():
        if entry["id"] != "case-42":
            assert entry["split"] == auto_split(entry["sha256"])
    with pytest.raises(ValueError, match="image_id"):
        Sample(image=b"x").name()


def test_boxes_are_clipped_and_bad_labels_refused(tmp_path: Path) -> None:
    _write_image(tmp_path / "p.jpg", 40, 20, 0)
    inside = Sample(image=tmp_path / "p.jpg", boxes=(LabelledBox(0, -10, -5, 20, 10), LabelledBox(0, 50, 0, 60, 5)))
    snap = build_snapshot([inside], class_names=["lesion"], root=tmp_path / "s", name="c", source="t")
    # First box clipped to (0, 0, 20, 10); the second lies outside the photo and is dropped.
    assert _read_yolo_file(snap.path / "labels" / "p.txt") == [[0, 0.25, 0.25, 0.5, 0.5]]
    with pytest.raises(ValueError, match="class map"):
        build_snapshot(
            [Sample(image=tmp_path / "p.jpg", boxes=(LabelledBox(3, 0, 0, 5, 5),))],
            class_names=["lesion"],
            root=tmp_path / "s",
            name="bad",
            source="t",
        )


def test_stats_and_cli(tmp_path: Path) -> None:
    import typer

    from detector.cli import register

    src = make_yolo(tmp_path / "src")
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(
        app, ["dataset", "import", "--format", "yolo", "--split", "train", str(src), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    snap = load_snapshot(Path(result.stdout.strip().splitlines()[-1]))
    assert snap.manifest["counts"] == {"train": 3, "valid": 0}

    stats = compute_stats(snap)
    assert stats.class_counts == {"papule": 1, "pustule": 2}
    assert stats.boxes_per_image["max"] == 2 and stats.boxes_per_image["empty_images"] == 1
    assert sum(stats.size_histogram.values()) == 3
    result = runner.invoke(app, ["dataset", "stats", str(snap.path)])
    assert result.exit_code == 0, result.output
    assert stats_png_path(snap).is_file() and stats_png_path(snap).parent == snap.path.parent
    assert save_histogram(stats, tmp_path / "h.png").stat().st_size > 1000


# --- EXIF orientation: boxes are in the photo as displayed ----------------------------------------------------

# displayed (upright) 24 wide x 40 high; stored turned a quarter with EXIF orientation 6 ("rotate 90 CW to view")
UPRIGHT_W, UPRIGHT_H = 24, 40
PATCH = (4.0, 20.0, 12.0, 32.0)  # x1, y1, x2, y2 in displayed pixels: the only bright area


def make_rotated_jpeg(path: Path) -> None:
    from PIL import Image

    upright = np.full((UPRIGHT_H, UPRIGHT_W, 3), 20, dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in PATCH)
    upright[y1:y2, x1:x2] = 235
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, format="JPEG", quality=95, exif=exif)


def make_rotated(fmt: str, root: Path) -> Path:
    """One rotated photo labelled in displayed coordinates, as each tool would write it."""
    x1, y1, x2, y2 = PATCH
    w, h = UPRIGHT_W, UPRIGHT_H
    make_rotated_jpeg(root / "images" / "r.jpg")
    if fmt == "yolo":
        (root / "labels").mkdir()
        (root / "labels" / "r.txt").write_text(
            f"0 {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"
        )
        (root / "data.yaml").write_text(yaml.safe_dump({"names": ["lesion"]}))
    elif fmt == "voc":
        box = f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
        (root / "r.xml").write_text(
            f"<annotation><filename>r.jpg</filename><object><name>lesion</name><bndbox>{box}</bndbox></object></annotation>"
        )
    elif fmt == "coco":
        data = {
            "images": [{"id": 1, "file_name": "r.jpg", "width": w, "height": h}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}],
            "categories": [{"id": 1, "name": "lesion"}],
        }
        (root / "annotations.json").write_text(json.dumps(data))
    else:
        value = {"x": x1 / w * 100, "y": y1 / h * 100, "width": (x2 - x1) / w * 100, "height": (y2 - y1) / h * 100}
        result = [{"type": "rectanglelabels", "value": {**value, "rotation": 0, "rectanglelabels": ["lesion"]}}]
        tasks = [{"id": 1, "data": {"image": "/data/upload/1/r.jpg"}, "annotations": [{"result": result}]}]
        (root / "export.json").write_text(json.dumps(tasks))
    return root


@pytest.mark.parametrize("fmt", list(MAKERS))
def test_exif_orientation_is_applied_to_pixel_boxes(fmt: str, tmp_path: Path) -> None:
    src = make_rotated(fmt, tmp_path / "src")
    dataset = read_dataset(fmt, src)
    snap = build_snapshot(dataset.samples, class_names=["lesion"], root=tmp_path / "snaps", name="r", source=fmt)
    (image,) = snap.images()
    assert image.read_bytes() == (src / "images" / "r.jpg").read_bytes()  # stored as imported, EXIF kept
    x1, y1, x2, y2 = PATCH
    expected = [[0, (x1 + x2) / 2 / UPRIGHT_W, (y1 + y2) / 2 / UPRIGHT_H, (x2 - x1) / UPRIGHT_W, (y2 - y1) / UPRIGHT_H]]
    np.testing.assert_allclose(_read_yolo_file(snap.label_path(image)), expected, atol=2e-6)
    # the trainer and the evaluator read with OpenCV, which turns the photo upright: the box must sit on the patch
    pixels = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    assert pixels.shape == (UPRIGHT_H, UPRIGHT_W)
    (box,) = read_labels(snap, image)
    inside = pixels[round(box.y1) : round(box.y2), round(box.x1) : round(box.x2)]
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx(PATCH, abs=1e-3)
    assert inside.mean() > 200 and (pixels.sum() - inside.sum()) / (pixels.size - inside.size) < 60


# --- Label Studio: which annotation of a task is imported ----------------------------------------------------


def _ls_result(x: float) -> list[dict[str, object]]:
    value = {"x": x, "y": 10.0, "width": 10.0, "height": 10.0, "rotation": 0, "rectanglelabels": ["papule"]}
    return [{"type": "rectanglelabels", "value": value}]


def test_labelstudio_takes_the_latest_updated_annotation_not_the_last_listed(tmp_path: Path) -> None:
    _write_image(tmp_path / "images" / "a.jpg", 100, 100, seed=1)
    annotations = [
        {
            "id": 1,
            "created_at": "2024-01-01T09:00:00Z",
            "updated_at": "2024-03-05T12:00:00.5Z",
            "result": _ls_result(10),
        },
        {"id": 2, "created_at": "2024-02-01T09:00:00Z", "updated_at": "2024-02-01T09:00:00Z", "result": _ls_result(40)},
        {"id": 3, "was_cancelled": True, "updated_at": "2024-06-01T00:00:00Z", "result": _ls_result(70)},
    ]
    tasks = [{"id": 1, "data": {"image": "a.jpg"}, "annotations": annotations}]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    (sample,) = read_dataset("labelstudio", tmp_path).samples
    assert [b.x1 for b in sample.boxes] == pytest.approx([10.0])  # id 1, edited last; not id 2, not the cancelled


def test_latest_annotation_falls_back_to_created_at_then_list_order() -> None:
    from detector.datasets.formats import latest_annotation

    by_created = [
        {"id": 1, "created_at": "2024-05-01T00:00:00+02:00"},
        {"id": 2, "created_at": "2024-04-30T23:00:00+00:00"},  # later in UTC than id 1
        {"id": 3},
    ]
    assert latest_annotation(by_created)["id"] == 2
    assert latest_annotation([{"id": 1}, {"id": 2}])["id"] == 2  # no times at all: the last listed
    assert latest_annotation([{"id": 1, "updated_at": "2024-01-02T00:00:00"}, {"id": 2, "created_at": "2024-01-01"}])[
        "id"
    ] == 1  # fmt: skip
    assert latest_annotation([{"id": 1, "was_cancelled": True}]) is None
    assert latest_annotation([]) is None
