"""Label export formats on hand-made samples."""

from __future__ import annotations

import io
import zipfile

import pytest

from infra.db.repositories.labels import ReviewedSample
from pipelines.review.label_export import (
    class_names_for,
    split_of,
    to_coco,
    to_labelstudio,
    yolo_files,
    yolo_lines,
    zip_bytes,
)

SAMPLES = [
    ReviewedSample(
        case_id="c1",
        photo_key="cases/c1/photo.jpg",
        width=200,
        height=100,
        boxes=[
            {"label": "lesion", "box": [10.0, 20.0, 50.0, 60.0]},
            {"label": "papule", "box": [150.0, 0.0, 250.0, 10.0]},
        ],
        grade=2,
        reviewer_id="derm-a",
    ),
    ReviewedSample(
        case_id="c2", photo_key="cases/c2/photo.jpg", width=50, height=50, boxes=[], grade=0, reviewer_id="derm-b"
    ),
]
TAXONOMY = {
    "lesion": {"category": "acne", "model_class": "lesion"},
    "papule": {"category": "acne", "model_class": "lesion"},
    "scar": {"category": "non_acne", "model_class": None},
}


def test_class_names_keep_model_order_then_extras() -> None:
    assert class_names_for(SAMPLES, ["lesion"]) == ["lesion", "papule"]
    assert class_names_for(SAMPLES, ["papule", "lesion", "nodule"]) == ["papule", "lesion", "nodule"]


def test_yolo_lines_are_normalised_and_clipped() -> None:
    lines = yolo_lines(SAMPLES[0], ["lesion", "papule"]).splitlines()
    # box 1: cx = 30/200, cy = 40/100, w = 40/200, h = 40/100
    assert lines[0] == "0 0.150000 0.400000 0.200000 0.400000"
    # box 2 clipped at x = 200: x 150..200 -> cx = 175/200, w = 50/200; y 0..10 -> cy = 0.05, h = 0.1
    assert lines[1] == "1 0.875000 0.050000 0.250000 0.100000"
    assert yolo_lines(SAMPLES[1], ["lesion"]) == ""


def test_yolo_zip_has_disjoint_train_and_val_names_grades_reviewers_and_taxonomy() -> None:
    photos = {"cases/c1/photo.jpg": b"jpeg-1", "cases/c2/photo.jpg": b"jpeg-2"}
    files = yolo_files(SAMPLES, ["lesion", "papule"], photos.__getitem__, TAXONOMY)
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(files)))
    split = split_of(SAMPLES)
    assert sorted(split.values()) == ["train", "val"]  # two samples: one in each, never the same one in both
    assert sorted(archive.namelist()) == sorted(
        [
            "data.yaml",
            "grades.csv",
            "taxonomy.json",
            f"images/{split['c1']}/c1.jpg",
            f"images/{split['c2']}/c2.jpg",
            f"labels/{split['c1']}/c1.txt",
            f"labels/{split['c2']}/c2.txt",
        ]
    )
    assert archive.read(f"images/{split['c2']}/c2.jpg") == b"jpeg-2"
    data_yaml = archive.read("data.yaml").decode()
    assert "  1: papule" in data_yaml and "train: images/train" in data_yaml and "val: images/val" in data_yaml
    assert archive.read("grades.csv").decode().splitlines() == [
        "case_id,grade,reviewer_id,split",
        f"c1,2,derm-a,{split['c1']}",
        f"c2,0,derm-b,{split['c2']}",
    ]
    assert b'"model_class": "lesion"' in archive.read("taxonomy.json")


def test_split_is_stable_per_case_and_mostly_train() -> None:
    many = [SAMPLES[1]._replace(case_id=f"case-{n}") for n in range(200)]
    split = split_of(many)
    assert split == split_of(list(reversed(many)))  # a case never changes split between exports
    assert 20 <= list(split.values()).count("val") <= 60
    assert split_of(many[:1]) in ({"case-0": "train"}, {"case-0": "val"})


def test_coco_boxes_are_xywh_with_categories_from_one() -> None:
    coco = to_coco(SAMPLES, ["lesion", "papule", "scar"], TAXONOMY)
    assert [c["name"] for c in coco["categories"]] == ["lesion", "papule", "scar"]
    assert [c["supercategory"] for c in coco["categories"]] == ["acne", "acne", "non_acne"]
    assert [c["model_class"] for c in coco["categories"]] == ["lesion", "lesion", None]
    assert [i["grade"] for i in coco["images"]] == [2, 0]
    assert [i["reviewer_id"] for i in coco["images"]] == ["derm-a", "derm-b"]
    first, second = coco["annotations"]
    assert first["bbox"] == [10.0, 20.0, 40.0, 40.0] and first["category_id"] == 1 and first["image_id"] == 1
    assert second["bbox"] == [150.0, 0.0, 50.0, 10.0] and second["area"] == 500.0


def test_labelstudio_percent_coordinates_and_grade_choice() -> None:
    tasks = to_labelstudio(SAMPLES, lambda case_id: f"http://x/{case_id}.jpg", TAXONOMY)
    assert tasks[0]["annotations"][0]["completed_by"] == "derm-a"
    assert tasks[0]["data"]["image"] == "http://x/c1.jpg"
    result = tasks[0]["annotations"][0]["result"]
    rect = result[0]["value"]
    assert (rect["x"], rect["y"], rect["width"], rect["height"]) == pytest.approx((5.0, 20.0, 20.0, 40.0))
    assert rect["rectanglelabels"] == ["lesion"] and result[0]["meta"] == {"category": "acne"}
    assert result[-1]["value"]["choices"] == ["2"]
    assert tasks[1]["annotations"][0]["result"] == [
        {"type": "choices", "from_name": "grade", "to_name": "image", "value": {"choices": ["0"]}}
    ]
