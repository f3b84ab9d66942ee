"""Reviewed labels as YOLO (zip), COCO JSON and Label Studio JSON.

Pure functions on `ReviewedSample`s; only the YOLO zip needs the photos, read through a callable so the
caller decides where they come from (the photo store, a test's dict).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from infra.db.repositories.labels import ReviewedSample

FORMATS = ("yolo", "coco", "labelstudio")


def class_names_for(samples: Iterable[ReviewedSample], known: Sequence[str]) -> list[str]:
    """The model's classes in their order, then any other label reviewers used, sorted (stable indices)."""
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


def yolo_files(
    samples: Sequence[ReviewedSample], class_names: Sequence[str], read_photo: Callable[[str], bytes]
) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of a YOLO dataset: images/, labels/, data.yaml, and grades.csv (the severity labels)."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(class_names))
    yield "data.yaml", f"path: .\ntrain: images\nval: images\nnames:\n{names}\n".encode()
    grades = ["case_id,grade"]
    for sample in samples:
        yield f"images/{sample.case_id}.jpg", read_photo(sample.photo_key)
        yield f"labels/{sample.case_id}.txt", yolo_lines(sample, class_names).encode()
        grades.append(f"{sample.case_id},{'' if sample.grade is None else sample.grade}")
    yield "grades.csv", ("\n".join(grades) + "\n").encode()


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files:
            archive.writestr(path, data)
    return buffer.getvalue()


def to_coco(samples: Sequence[ReviewedSample], class_names: Sequence[str]) -> dict[str, Any]:
    """COCO detection JSON (bbox = x, y, w, h); each image also carries its reviewed severity `grade`."""
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
    categories = [{"id": i, "name": name} for name, i in category.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def to_labelstudio(samples: Sequence[ReviewedSample], image_url: Callable[[str], str]) -> list[dict[str, Any]]:
    """Label Studio tasks with one annotation each: `rectanglelabels` in percent and the grade as a choice."""
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
                "annotations": [{"result": result}],
            }
        )
    return tasks
