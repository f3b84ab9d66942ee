"""Reviewed labels as YOLO (zip), COCO JSON and Label Studio JSON.

Pure functions on `ReviewedSample`s; only the YOLO zip needs the photos, read through a callable so the
caller decides where they come from (the photo store, a test's dict). Class names are the product's lesion
taxonomy (not the model's classes); `taxonomy` maps each name to its `category` and `model_class`, and every
format carries it together with the reviewer who gave the final label.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from infra.db.repositories.labels import ReviewedSample

FORMATS = ("yolo", "coco", "labelstudio")
VAL_FRACTION = 0.2
Taxonomy = Mapping[str, Mapping[str, Any]]  # name -> {"category", "model_class", "display"}


def class_names_for(samples: Iterable[ReviewedSample], known: Sequence[str]) -> list[str]:
    """The known names (the taxonomy) in their order, then any other label reviewers used, sorted (stable
    indices)."""
    names = list(dict.fromkeys(known))
    extra = sorted({box["label"] for s in samples for box in s.boxes} - set(names))
    return names + extra


def _clip(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def yolo_lines(sample: ReviewedSample, class_names: Sequence[str]) -> str:
    """`class cx cy w h` per box, normalised to the photo size."""
    index = {name: i for i, name in enumerate(class_names)}
    lines = []
    for box in sample.boxes:
        x1, y1, x2, y2 = _clip(box["box"], sample.width, sample.height)
        cx, cy = (x1 + x2) / 2 / sample.width, (y1 + y2) / 2 / sample.height
        w, h = (x2 - x1) / sample.width, (y2 - y1) / sample.height
        lines.append(f"{index[box['label']]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def _fraction(case_id: str) -> float:
    digest = hashlib.sha256(f"split:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(samples: Sequence[ReviewedSample], val_fraction: float = VAL_FRACTION) -> dict[str, str]:
    """case_id -> "train" | "val": deterministic per case, so a case never moves between exports' splits; with
    two or more samples at least one is in each split (the one that hashes lowest goes to val)."""
    split = {s.case_id: ("val" if _fraction(s.case_id) < val_fraction else "train") for s in samples}
    if len(split) >= 2:
        ranked = sorted(split, key=_fraction)
        if "val" not in split.values():
            split[ranked[0]] = "val"
        if "train" not in split.values():
            split[ranked[-1]] = "train"
    return split


def yolo_files(
    samples: Sequence[ReviewedSample],
    class_names: Sequence[str],
    read_photo: Callable[[str], bytes],
    taxonomy: Taxonomy | None = None,
) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of a YOLO dataset: images/{train,val}/, labels/{train,val}/, data.yaml whose `val` is
    disjoint from `train`, grades.csv (severity, reviewer, split) and taxonomy.json (category and model class
    of every class name)."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(class_names))
    # no `path:`: Ultralytics then resolves train/val against the folder holding data.yaml, wherever it is run from
    # (`path: .` meant the current directory)
    yield "data.yaml", f"train: images/train\nval: images/val\nnames:\n{names}\n".encode()
    split = split_of(samples)
    grades = ["case_id,grade,reviewer_id,split"]
    for sample in samples:
        part = split[sample.case_id]
        yield f"images/{part}/{sample.case_id}.jpg", read_photo(sample.photo_key)
        yield f"labels/{part}/{sample.case_id}.txt", yolo_lines(sample, class_names).encode()
        grade = "" if sample.grade is None else sample.grade
        grades.append(f"{sample.case_id},{grade},{sample.reviewer_id or ''},{part}")
    yield "grades.csv", ("\n".join(grades) + "\n").encode()
    yield "taxonomy.json", json.dumps(_categories(class_names, taxonomy), indent=2).encode()


def _categories(class_names: Sequence[str], taxonomy: Taxonomy | None) -> list[dict[str, Any]]:
    """Per class name: its index and, when the taxonomy knows it, its category and model class."""
    known = taxonomy or {}
    return [
        {
            "index": i,
            "name": name,
            "category": known.get(name, {}).get("category"),
            "model_class": known.get(name, {}).get("model_class"),
        }
        for i, name in enumerate(class_names)
    ]


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files:
            archive.writestr(path, data)
    return buffer.getvalue()


def to_coco(
    samples: Sequence[ReviewedSample], class_names: Sequence[str], taxonomy: Taxonomy | None = None
) -> dict[str, Any]:
    """COCO detection JSON (bbox = x, y, w, h); each image also carries its reviewed severity `grade` and the
    `reviewer_id`; each category its taxonomy `supercategory` (acne / non_acne) and `model_class`."""
    category = {name: i + 1 for i, name in enumerate(class_names)}
    images, annotations = [], []
    for image_id, sample in enumerate(samples, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"{sample.case_id}.jpg",
                "width": sample.width,
                "height": sample.height,
                "case_id": sample.case_id,
                "grade": sample.grade,
                "reviewer_id": sample.reviewer_id,
            }
        )
        for box in sample.boxes:
            x1, y1, x2, y2 = _clip(box["box"], sample.width, sample.height)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[box["label"]],
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "area": round((x2 - x1) * (y2 - y1), 2),
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": c["index"] + 1, "name": c["name"], "supercategory": c["category"] or "", "model_class": c["model_class"]}
        for c in _categories(class_names, taxonomy)
    ]
    info = {"description": "skintrouble reviewed labels", "taxonomy": "skintrouble lesion taxonomy"}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}


def to_labelstudio(
    samples: Sequence[ReviewedSample], image_url: Callable[[str], str], taxonomy: Taxonomy | None = None
) -> list[dict[str, Any]]:
    """Label Studio tasks with one annotation each: `rectanglelabels` in percent (with the label's taxonomy
    category in `meta`), the grade as a choice, the reviewer as `completed_by`."""
    tasks = []
    for sample in samples:
        result: list[dict[str, Any]] = []
        for n, box in enumerate(sample.boxes):
            x1, y1, x2, y2 = _clip(box["box"], sample.width, sample.height)
            result.append(
                {
                    "id": f"{sample.case_id}-{n}",
                    "type": "rectanglelabels",
                    "from_name": "label",
                    "to_name": "image",
                    "original_width": sample.width,
                    "original_height": sample.height,
                    "value": {
                        "x": 100 * x1 / sample.width,
                        "y": 100 * y1 / sample.height,
                        "width": 100 * (x2 - x1) / sample.width,
                        "height": 100 * (y2 - y1) / sample.height,
                        "rotation": 0,
                        "rectanglelabels": [box["label"]],
                    },
                    "meta": {"category": (taxonomy or {}).get(box["label"], {}).get("category")},
                }
            )
        if sample.grade is not None:
            result.append(
                {
                    "type": "choices",
                    "from_name": "grade",
                    "to_name": "image",
                    "value": {"choices": [str(sample.grade)]},
                }
            )
        tasks.append(
            {
                "data": {"image": image_url(sample.case_id), "case_id": sample.case_id},
                "annotations": [{"result": result, "completed_by": sample.reviewer_id}],
            }
        )
    return tasks
