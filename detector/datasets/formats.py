"""Importers for the label formats annotators hand us: YOLO txt, Pascal VOC, COCO and Label Studio.

Each returns an `ImportedDataset` with boxes in pixels of the image as displayed, EXIF orientation applied (the
snapshot writer converts to YOLO with the same displayed size). Images that cannot be found are an error, not a silent skip: a dataset
missing a tenth of its photos would still train, just worse.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from PIL import Image

from detector.datasets.samples import ImportedDataset, LabelledBox, Sample, Split

Format = Literal["yolo", "voc", "coco", "labelstudio"]
FORMATS: tuple[str, ...] = ("yolo", "voc", "coco", "labelstudio")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_SPLIT_ALIASES: dict[str, Split] = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid"}


# EXIF orientations that turn the picture a quarter (transpose, 90 CW, transverse, 90 CCW): width and height swap
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


def image_size(image: Path | bytes) -> tuple[int, int]:
    """(width, height) of the photo as displayed, from the header only.

    Boxes live in that upright frame: annotation tools (browsers, CVAT, Label Studio) show a photo with its EXIF
    orientation applied, and so do the readers that consume the snapshot (OpenCV's `imread` in training and
    evaluation). The stored pixel grid of an orientation 5-8 photo is the displayed one turned a quarter.
    """
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
        width, height = im.size
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # unreadable EXIF: readers ignore it too
            orientation = 1
    return (height, width) if orientation in _QUARTER_TURNS else (width, height)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# --- YOLO -------------------------------------------------------------------------------------------


def _yolo_names(root: Path) -> list[str] | None:
    for candidate in (root / "data.yaml", root / "dataset.yaml", root.parent / "data.yaml"):
        if candidate.is_file():
            names = (yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            if isinstance(names, list):
                return [str(n) for n in names]
    return None


def _yolo_split_dirs(root: Path) -> list[tuple[Path, Split | None]]:
    """`root/images` alone, or one `root/<split>/images` per split folder (ACNE04 layout)."""
    if (root / "images").is_dir():
        return [(root, _SPLIT_ALIASES.get(root.name.lower()))]
    found = [
        (child, _SPLIT_ALIASES[child.name.lower()])
        for child in sorted(root.iterdir())
        if child.is_dir() and child.name.lower() in _SPLIT_ALIASES and (child / "images").is_dir()
    ]
    if not found:
        raise FileNotFoundError(f"{root}: expected images/ + labels/ or train|valid/images folders")
    return found


def read_yolo(root: Path) -> ImportedDataset:
    """A YOLO folder: images/ + labels/ (same stems), optional data.yaml `names`."""
    root = Path(root)
    samples: list[Sample] = []
    max_label = -1
    for folder, split in _yolo_split_dirs(root):
        for image in _images_in(folder / "images"):
            label_file = folder / "labels" / f"{image.stem}.txt"
            boxes: list[LabelledBox] = []
            if label_file.is_file():
                width, height = image_size(image)
                for line_no, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 5:
                        raise ValueError(f"{label_file}:{line_no}: expected 'class cx cy w h'")
                    label = int(parts[0])
                    cx, cy, w, h = (float(v) for v in parts[1:])
                    boxes.append(LabelledBox.from_yolo(label, cx, cy, w, h, width, height))
                    max_label = max(max_label, label)
            samples.append(Sample(image=image, boxes=tuple(boxes), split=split))
    names = _yolo_names(root) or [str(i) for i in range(max_label + 1)] or ["lesion"]
    if max_label >= len(names):
        raise ValueError(f"{root}: label index {max_label} but only {len(names)} class names")
    return ImportedDataset(samples=samples, class_names=names, source=f"yolo:{root}")


# --- Pascal VOC -------------------------------------------------------------------------------------


def _find_image(name: str, search: Iterable[Path]) -> Path:
    for folder in search:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"image {name!r} not found in {[str(s) for s in search]}")


def read_voc(root: Path) -> ImportedDataset:
    """Pascal VOC: Annotations/*.xml + JPEGImages/ (or xml files next to their images).

    Coordinates are taken as pixel edges, as CVAT, Roboflow and labelImg write them.
    """
    root = Path(root)
    xml_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    image_dirs = [root / "JPEGImages", root / "images", xml_dir, root]
    names: list[str] = []
    samples: list[Sample] = []
    for xml_file in sorted(xml_dir.glob("*.xml")):
        tree = ET.parse(xml_file).getroot()
        filename = tree.findtext("filename") or f"{xml_file.stem}.jpg"
        image = _find_image(Path(filename).name, image_dirs)
        boxes: list[LabelledBox] = []
        for obj in tree.iter("object"):
            name = (obj.findtext("name") or "").strip()
            bnd = obj.find("bndbox")
            if not name or bnd is None:
                continue
            if name not in names:
                names.append(name)
            coords = [float(bnd.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes.append(LabelledBox(names.index(name), *coords))
        samples.append(Sample(image=image, boxes=tuple(boxes)))
    return _sorted_names(ImportedDataset(samples=samples, class_names=names, source=f"voc:{root}"))


def _sorted_names(dataset: ImportedDataset) -> ImportedDataset:
    """Order classes alphabetically so the class map does not depend on which file came first."""
    order = sorted(dataset.class_names)
    remap = {old: order.index(name) for old, name in enumerate(dataset.class_names)}
    samples = [
        Sample(
            image=s.image,
            boxes=tuple(LabelledBox(remap[b.label], b.x1, b.y1, b.x2, b.y2) for b in s.boxes),
            split=s.split,
            image_id=s.image_id,
        )
        for s in dataset.samples
    ]
    return ImportedDataset(samples=samples, class_names=order or ["lesion"], source=dataset.source)


# --- COCO -------------------------------------------------------------------------------------------


def _single_json(src: Path, *preferred: str) -> Path:
    if src.is_file():
        return src
    for name in preferred:
        if (src / name).is_file():
            return src / name
    candidates = sorted(src.glob("*.json"))
    if len(candidates) != 1:
        raise FileNotFoundError(f"{src}: expected one annotation .json file, found {len(candidates)}")
    return candidates[0]


def read_coco(src: Path) -> ImportedDataset:
    """COCO detection json (a file, or a folder holding one); images beside it or in images/."""
    ann_file = _single_json(Path(src), "_annotations.coco.json", "annotations.json", "instances.json")
    data: dict[str, Any] = json.loads(ann_file.read_text(encoding="utf-8"))
    categories = sorted(data.get("categories", []), key=lambda c: int(c["id"]))
    cat_index = {int(c["id"]): i for i, c in enumerate(categories)}
    by_image: dict[int, list[LabelledBox]] = {}
    for ann in data.get("annotations", []):
        if ann.get("iscrowd"):
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        box = LabelledBox(cat_index[int(ann["category_id"])], x, y, x + w, y + h)
        by_image.setdefault(int(ann["image_id"]), []).append(box)
    search = [ann_file.parent, ann_file.parent / "images"]
    samples = [
        Sample(image=_find_image(Path(img["file_name"]).name, search), boxes=tuple(by_image.get(int(img["id"]), [])))
        for img in sorted(data.get("images", []), key=lambda i: str(i["file_name"]))
    ]
    names = [str(c["name"]) for c in categories] or ["lesion"]
    return ImportedDataset(samples=samples, class_names=names, source=f"coco:{ann_file}")


# --- Label Studio -----------------------------------------------------------------------------------


def _labelstudio_image(ref: str, search: list[Path]) -> Path:
    """Resolve `/data/upload/3/1a2b3c4d-photo.jpg` style references to a local file."""
    name = Path(ref.split("?")[0]).name
    try:
        return _find_image(name, search)
    except FileNotFoundError:
        if "-" in name:  # uploads are stored as '<8 hex>-<original name>'
            return _find_image(name.split("-", 1)[1], search)
        raise


def _annotation_time(annotation: dict[str, Any]) -> datetime:
    """`updated_at`, else `created_at` (ISO 8601, as Label Studio exports them); the earliest time when neither."""
    for key in ("updated_at", "created_at"):
        value = annotation.get(key)
        if isinstance(value, str) and value:
            try:
                stamp = datetime.fromisoformat(value)
            except ValueError:
                continue
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def latest_annotation(annotations: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The annotation a task's labels come from: not cancelled, the last edited (`updated_at`, falling back to
    `created_at`), list order breaking ties. Exports list annotations by id, not by edit, so the last in the
    list is not necessarily the latest word."""
    kept = [(i, a) for i, a in enumerate(annotations) if not a.get("was_cancelled")]
    if not kept:
        return None
    return max(kept, key=lambda item: (_annotation_time(item[1]), item[0]))[1]


def read_labelstudio(src: Path) -> ImportedDataset:
    """Label Studio JSON export with `rectanglelabels` (percent coordinates of the original image).

    The latest non-cancelled annotation of each task wins (`latest_annotation`); rotated rectangles are refused rather
    than silently treated as upright.
    """
    ann_file = _single_json(Path(src), "result.json", "export.json")
    tasks: list[dict[str, Any]] = json.loads(ann_file.read_text(encoding="utf-8"))
    search = [ann_file.parent, ann_file.parent / "images"]
    names: list[str] = []
    samples: list[Sample] = []
    for task in tasks:
        ref = next(iter(task.get("data", {}).values()), None)
        if not isinstance(ref, str):
            raise ValueError(f"task {task.get('id')}: no image reference in data")
        image = _labelstudio_image(ref, search)
        chosen = latest_annotation(task.get("annotations", []))
        results = chosen.get("result", []) if chosen else []
        width, height = image_size(image)
        boxes: list[LabelledBox] = []
        for res in results:
            if res.get("type") != "rectanglelabels":
                continue
            value = res["value"]
            if abs(float(value.get("rotation", 0.0))) > 1e-6:
                raise ValueError(f"task {task.get('id')}: rotated rectangles are not supported")
            label = str(value["rectanglelabels"][0])
            if label not in names:
                names.append(label)
            x, y = float(value["x"]) / 100 * width, float(value["y"]) / 100 * height
            w, h = float(value["width"]) / 100 * width, float(value["height"]) / 100 * height
            boxes.append(LabelledBox(names.index(label), x, y, x + w, y + h))
        samples.append(Sample(image=image, boxes=tuple(boxes)))
    return _sorted_names(ImportedDataset(samples=samples, class_names=names, source=f"labelstudio:{ann_file}"))


READERS: dict[str, Callable[[Path], ImportedDataset]] = {
    "yolo": read_yolo,
    "voc": read_voc,
    "coco": read_coco,
    "labelstudio": read_labelstudio,
}


def read_dataset(fmt: str, src: Path) -> ImportedDataset:
    """Dispatch on the format name used by the CLI."""
    try:
        reader = READERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}, expected one of {', '.join(FORMATS)}") from None
    return reader(Path(src))
