"""Immutable, content-addressed dataset snapshots.

A snapshot is `<root>/<name>-<digest12>/` with `images/`, `labels/` (YOLO txt, same stems) and
`manifest.json`. The digest covers every file's relative path and sha256, each image's split and the
class map, so identical content always gives the same folder name and any edit gives a new one.
Snapshots are written to a temporary folder and renamed into place in one step, never overwritten,
and left read-only: a training run recorded against a digest can always be reproduced.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from detector.datasets.formats import image_size
from detector.datasets.samples import SPLITS, LabelledBox, Sample, Split

MANIFEST = "manifest.json"
SplitPolicy = Literal["train", "valid", "auto"]
DEFAULT_VALID_FRACTION = 0.2
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class SnapshotError(RuntimeError):
    """A snapshot is missing, malformed or does not match its own digest."""


@dataclass(frozen=True)
class Snapshot:
    """A snapshot folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def digest(self) -> str:
        return str(self.manifest["digest"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    def images(self, split: Split | None = None) -> list[Path]:
        """Image paths, optionally of one split, in manifest order."""
        return [
            self.path / rel
            for rel, entry in self.manifest["images"].items()
            if split is None or entry["split"] == split
        ]

    def label_path(self, image: Path) -> Path:
        return self.path / "labels" / f"{Path(image).stem}.txt"

    def image_id(self, image: Path) -> str:
        return Path(image).stem


def sha256_of(source: Path | bytes) -> str:
    """Hex sha256 of a file (read in chunks) or of bytes already in memory: the project's one content hash."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(files: dict[str, str], splits: dict[str, str], class_names: Sequence[str]) -> str:
    """sha256 over sorted (relpath, sha256, split) plus the class map."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(class_names), ensure_ascii=False).encode())
    for rel in sorted(files):
        digest.update(f"\n{rel}\t{files[rel]}\t{splits.get(rel, '')}".encode())
    return digest.hexdigest()


def auto_split(sha256: str, valid_fraction: float = DEFAULT_VALID_FRACTION) -> Split:
    """Deterministic split from the image's content hash: the same photo always lands on the same side."""
    return "valid" if int(sha256[:8], 16) / 0xFFFFFFFF < valid_fraction else "train"


def _safe_stem(name: str) -> str:
    stem = Path(name).stem
    cleaned = "".join(c if c in _NAME_CHARS else "_" for c in stem).strip(".") or "image"
    return cleaned[:120]


def _image_bytes_and_suffix(image: Path | bytes, name: str) -> tuple[bytes, str, tuple[int, int]]:
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        fmt = (im.format or "").lower()
    size = image_size(data)  # as displayed: the frame the boxes are in
    suffix = Path(name).suffix.lower() if not isinstance(image, bytes) else ""
    if not suffix:
        suffix = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}.get(fmt, ".jpg")
    return data, suffix, size


def _yolo_lines(boxes: Iterable[LabelledBox], width: int, height: int, n_classes: int) -> str:
    lines = []
    for box in boxes:
        if not 0 <= box.label < n_classes:
            raise ValueError(f"box label {box.label} outside the class map of {n_classes} classes")
        label, cx, cy, w, h = box.to_yolo(width, height)
        if w <= 0 or h <= 0:
            continue  # degenerate after clipping: outside the photo
        lines.append(f"{label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def build_snapshot(
    samples: Sequence[Sample],
    *,
    class_names: Sequence[str],
    root: Path,
    name: str,
    source: str,
    split: SplitPolicy = "auto",
    exclude: Collection[str] = (),
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    exist_ok: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Snapshot:
    """Write `samples` as a new snapshot under `root` and return it.

    `split` forces every image into one split, or `auto` keeps a sample's own split and hashes the
    rest. `exclude` holds image ids (file stems) to leave out, e.g. cases deleted on request. If a
    snapshot with the same digest exists it is returned when `exist_ok`, otherwise refused.
    """
    if not class_names:
        raise ValueError("class_names must not be empty")
    if not name or set(name) - _NAME_CHARS:
        raise ValueError(f"snapshot name {name!r} must use letters, digits, '_', '-' or '.'")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    excluded = {Path(e).stem for e in exclude}
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        (tmp / "images").mkdir()
        (tmp / "labels").mkdir()
        files: dict[str, str] = {}
        images: dict[str, dict[str, Any]] = {}
        splits: dict[str, str] = {}
        used_stems: set[str] = set()
        total = len(samples)
        for i, sample in enumerate(samples):
            stem = _safe_stem(sample.name())
            if stem in excluded:
                if progress:
                    progress(i + 1, total)
                continue
            data, suffix, (width, height) = _image_bytes_and_suffix(sample.image, sample.name())
            sha = sha256_of(data)
            if stem in used_stems:  # two photos called IMG_0001.jpg from different folders
                stem = f"{stem}_{sha[:8]}"
            if stem in used_stems:
                raise ValueError(f"duplicate image {sample.name()!r} with identical content")
            used_stems.add(stem)
            image_rel = f"images/{stem}{suffix}"
            label_rel = f"labels/{stem}.txt"
            (tmp / image_rel).write_bytes(data)
            (tmp / label_rel).write_text(_yolo_lines(sample.boxes, width, height, len(class_names)))
            image_split: Split = split if split != "auto" else (sample.split or auto_split(sha, valid_fraction))
            files[image_rel] = sha
            files[label_rel] = sha256_of(tmp / label_rel)
            splits[image_rel] = image_split
            images[image_rel] = {
                "id": stem,
                "split": image_split,
                "sha256": sha,
                "label": label_rel,
                "label_sha256": files[label_rel],
                "width": width,
                "height": height,
                "boxes": len(sample.boxes),
            }
            if progress:
                progress(i + 1, total)
        if not images:
            raise ValueError("no images left to snapshot")
        digest = content_digest(files, splits, class_names)
        manifest = {
            "name": name,
            "digest": digest,
            "class_names": list(class_names),
            "source": source,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counts": {s: sum(1 for e in images.values() if e["split"] == s) for s in SPLITS},
            "images": dict(sorted(images.items())),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        final = root / f"{name}-{digest[:12]}"
        if final.exists():
            if exist_ok:
                existing = load_snapshot(final)
                if existing.digest == digest:
                    return existing
            raise FileExistsError(f"snapshot {final} already exists; snapshots are never overwritten")
        _make_read_only(tmp)
        try:
            os.rename(tmp, final)  # atomic on one filesystem; fails rather than replacing a folder
        except OSError:
            # Someone else built the same snapshot meanwhile: same digest, same content.
            if exist_ok and (final / MANIFEST).is_file() and load_snapshot(final).digest == digest:
                return load_snapshot(final)
            raise
        return Snapshot(path=final, manifest=manifest)
    finally:
        if tmp.exists():
            _make_writable(tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _make_read_only(folder: Path) -> None:
    ro_file = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(ro_file | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))
    folder.chmod(ro_file | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _make_writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def load_snapshot(path: Path) -> Snapshot:
    """Open a snapshot folder (cheap: reads the manifest only)."""
    path = Path(path)
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise SnapshotError(f"{path} is not a snapshot (no {MANIFEST})")
    return Snapshot(path=path, manifest=json.loads(manifest_file.read_text(encoding="utf-8")))


def verify_snapshot(path: Path) -> Snapshot:
    """Re-hash every file and check the digest: raises SnapshotError if anything changed."""
    snap = load_snapshot(path)
    files: dict[str, str] = {}
    splits: dict[str, str] = {}
    for rel, entry in snap.manifest["images"].items():
        for file_rel, expected in ((rel, entry["sha256"]), (entry["label"], entry["label_sha256"])):
            actual = sha256_of(snap.path / file_rel) if (snap.path / file_rel).is_file() else "missing"
            if actual != expected:
                raise SnapshotError(f"{snap.path / file_rel}: content changed ({actual[:12]} != {expected[:12]})")
            files[file_rel] = actual
        splits[rel] = entry["split"]
    on_disk = {str(p.relative_to(snap.path)) for sub in ("images", "labels") for p in (snap.path / sub).iterdir()}
    if extra := sorted(on_disk - set(files)):
        raise SnapshotError(f"{snap.path}: files not in the manifest: {extra[:5]}")
    if content_digest(files, splits, snap.class_names) != snap.digest:
        raise SnapshotError(f"{snap.path}: digest mismatch")
    return snap


def read_labels(snapshot: Snapshot, image: Path) -> list[LabelledBox]:
    """The boxes of one snapshot image, in its pixels."""
    entry = snapshot.manifest["images"][str(Path(image).relative_to(snapshot.path))]
    text = snapshot.label_path(image).read_text(encoding="utf-8")
    boxes = []
    for line in text.splitlines():
        if parts := line.split():
            cx, cy, w, h = (float(v) for v in parts[1:5])
            boxes.append(LabelledBox.from_yolo(int(parts[0]), cx, cy, w, h, entry["width"], entry["height"]))
    return boxes


def samples_from_snapshot(snapshot: Snapshot) -> list[Sample]:
    """A snapshot's content as samples, to combine with reviewed labels into the next snapshot."""
    return [
        Sample(image=image, boxes=tuple(read_labels(snapshot, image)), split=entry_split(snapshot, image))
        for image in snapshot.images()
    ]


def entry_split(snapshot: Snapshot, image: Path) -> Split:
    return snapshot.manifest["images"][str(Path(image).relative_to(snapshot.path))]["split"]
