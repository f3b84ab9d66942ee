"""Does the same skin get the same answer at any resolution and framing? Prints mAP50, grade accuracy and count
MAE per variant of labelled photos, through the serving path (JPEG upload -> sanitise -> reduced decode ->
scale normalisation -> detector -> photo pixels).

Variants: resampled 0.75x, 1x, 2x, 4x, 6x; and the 1x photo placed in the middle of a canvas twice its size,
plain grey or a blurred enlargement of the photo itself (a photo taken from further away), or in a phone viewer's
black or white frame (a screenshot of it). Labels are mapped the same way. Colour: the 1x photo as a phone that
records Display P3 sends it, its JPEG tagged with the profile (the service applies it), and the same values untagged
(what a service blind to profiles would analyse); beside them the photo compressed once more (JPEG q90) before
upload, a change of the same size that alters no colour. Paired with the same photo at 1x: the mean change in the
lesion count and the share of photos whose grade changed.
Protocol: `--part report` is valid's report part (no choice was made on it); `--part selection` is the part the scale
reference and crop margin were checked on.

    .venv/bin/python bench/scale_invariance.py --data ../shared/datasets/acne04/valid --part report \
        --out var/experiments/scale-report
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench import gate_data as gd
from detector.cli import progress_bar
from detector.datasets.splits import select_part
from detector.evaluation import EVAL_CONF, load_labelled_images, read_rgb
from detector.metrics import DetectionAccumulator, count_mae
from detector.onnx_runtime import Detector
from pipelines.cases.analysis import load_pixels
from pipelines.cases.photos import decode_photo

# (photo, boxes) -> (the image, or the JPEG bytes as the phone sends them, and its boxes)
Variant = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray | bytes, np.ndarray]]


def resampled(k: float) -> Variant:
    def make(rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if k == 1.0:
            return rgb, boxes
        h, w = rgb.shape[:2]
        size = (round(w * k), round(h * k))
        out = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
        return out, boxes * np.array([size[0] / w, size[1] / h, size[0] / w, size[1] / h])

    return make


def on_background(kind: str, canvas_factor: float = 2.0) -> Variant:
    """The photo at 1x in the middle of a larger canvas: plain grey, or its own blurred enlargement."""

    def make(rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        ch, cw = round(h * canvas_factor), round(w * canvas_factor)
        if kind == "plain":
            canvas = np.full((ch, cw, 3), 118, np.uint8)
        else:
            canvas = cv2.GaussianBlur(cv2.resize(rgb, (cw, ch), interpolation=cv2.INTER_LINEAR), (0, 0), 12)
        y0, x0 = (ch - h) // 2, (cw - w) // 2
        canvas[y0 : y0 + h, x0 : x0 + w] = rgb
        return canvas, boxes + np.array([x0, y0, x0, y0])

    return make


def in_screenshot(colour: int) -> Variant:
    """The 1x photo in a phone viewer's black or white frame (`gate_data.in_screen`), as a screenshot sends it."""

    def make(rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray | bytes, np.ndarray]:
        shot, x0, y0 = gd.in_screen(rgb, colour)
        return shot, boxes + np.array([x0, y0, x0, y0])

    return make


def recompressed(quality: int) -> Variant:
    """The 1x photo compressed once more before upload: a change of a level or two per pixel that leaves the skin as
    it was, to tell what such a change alone does to the answer."""
    return lambda rgb, boxes: (gd.jpeg(rgb, quality), boxes)


def display_p3(tagged: bool) -> Variant:
    """The 1x photo recorded in Display P3, its JPEG (q92) carrying the profile or not."""

    def make(rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray | bytes, np.ndarray]:
        values = gd.as_display_p3(rgb)
        return (gd.tagged_jpeg(values, gd.display_p3_profile(), quality=92) if tagged else values), boxes

    return make


VARIANTS: dict[str, Variant] = {
    "0.75x": resampled(0.75),
    "1x": resampled(1.0),
    "2x": resampled(2.0),
    "4x": resampled(4.0),
    "6x": resampled(6.0),
    "1x on plain 2x canvas": on_background("plain"),
    "1x on blurred 2x canvas": on_background("blurred"),
    "1x in a black screenshot frame": in_screenshot(0),
    "1x in a white screenshot frame": in_screenshot(255),
    "1x JPEG q90 first": recompressed(90),
    "1x Display P3 tagged": display_p3(tagged=True),
    "1x Display P3 untagged": display_p3(tagged=False),
}


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="YOLO folder (with valid/) or snapshot")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--part", choices=["selection", "report", "all"], default="report")
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--cache", type=Path, default=Path("var/cache/models"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=None, help="folder for summary.json")
    args = parser.parse_args()

    detector = Detector.load(args.model, args.cache, threads=args.threads)
    items, _ = load_labelled_images(args.data, args.split)
    items = sorted(items, key=lambda i: i.path.name)
    chosen = set(select_part([i.path.name for i in items], None if args.part == "all" else args.part))
    items = [i for i in items if i.path.name in chosen][: args.limit]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    acc = {v: DetectionAccumulator(class_names=["lesion"], recall_conf=detector.card.operating_conf) for v in variants}
    rows: dict[str, list[tuple[int, int, int, int]]] = {v: [] for v in variants}
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    total = len(items) * len(variants)
    with progress_bar(f"{len(items)} photos x {len(variants)} variants") as update:
        for done, item in enumerate(items, start=1):
            rgb = read_rgb(item.path)
            for name in variants:
                image, boxes = VARIANTS[name](rgb, item.boxes)
                start = time.perf_counter()
                upload = image if isinstance(image, bytes) else jpeg_bytes(image)
                photo = decode_photo(upload, max_pixels=100_000_000)
                pixels = load_pixels(photo.jpeg, detector)
                detection = detector.predict(pixels.rgb, conf=EVAL_CONF).scaled(*pixels.scale)
                seconds[name].append(time.perf_counter() - start)
                found = np.array([f.box for f in detection.findings], dtype=np.float64).reshape(-1, 4)
                scores = np.array([f.confidence for f in detection.findings], dtype=np.float64)
                acc[name].add(found, scores, np.zeros(len(scores), np.int64), boxes, np.zeros(len(boxes), np.int64))
                grade = detection.severity.grade  # as served: the grader when the card has one, else bands
                rows[name].append((detection.lesion_count, len(boxes), grade, -1 if item.grade is None else item.grade))
            update(done * len(variants), total)

    summary: dict[str, dict[str, float]] = {}
    reference = np.array(rows["1x"]) if "1x" in rows else None
    for name in variants:
        counts, labelled, pred, true = (np.array(col) for col in zip(*rows[name], strict=True))
        stats = acc[name].summary()
        summary[name] = {
            "mAP50": round(float(stats["mAP50"]), 4),
            "grade_accuracy": round(float(np.mean(pred[true >= 0] == true[true >= 0])), 4),
            "count_mae": round(count_mae(counts.tolist(), labelled.tolist()), 3),
            "count_bias": round(float(np.mean(counts - labelled)), 3),
            "median_s": round(float(np.median(seconds[name])), 3),
        }
        if reference is not None:  # paired with the same photo at 1x: what this variant changed in the answer
            summary[name]["count_change_vs_1x"] = round(float(np.mean(np.abs(counts - reference[:, 0]))), 3)
            summary[name]["grade_changed_vs_1x"] = round(float(np.mean(pred != reference[:, 2])), 4)
    base = summary.get("1x")
    table = Table(title=f"{args.split} {args.part} part, {len(items)} photos, model {detector.version}")
    columns = ("variant", "mAP50", "Δ vs 1x", "grade acc", "Δ vs 1x", "count MAE", "count bias")
    for column in (*columns, "|Δcount| vs 1x", "grade changed vs 1x", "median s"):
        table.add_column(column, justify="right")
    for name, s in summary.items():
        d_map = f"{s['mAP50'] - base['mAP50']:+.4f}" if base else "-"
        d_acc = f"{100 * (s['grade_accuracy'] - base['grade_accuracy']):+.1f} pt" if base else "-"
        table.add_row(
            name,
            f"{s['mAP50']:.4f}",
            d_map,
            f"{s['grade_accuracy']:.1%}",
            d_acc,
            f"{s['count_mae']:.2f}",
            f"{s['count_bias']:+.2f}",
            f"{s['count_change_vs_1x']:.2f}" if base else "-",
            f"{s['grade_changed_vs_1x']:.1%}" if base else "-",
            f"{s['median_s']:.2f}",
        )
    Console(width=160).print(table)  # whole columns in a log file too
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"part": args.part, "photos": len(items), "model": detector.version, "variants": summary}
        (args.out / "summary.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
