"""Serving-side detector: YOLOv8 ONNX on onnxruntime, turned into `Detection`/`Finding`.

The one adapter from raw network output to our vocabulary. Imports numpy, OpenCV and
onnxruntime only: the ONNX file is produced (once, cached) by `detector.export` in a subprocess.

Pipeline per photo: crop to the skin region and resize it to the model's training scale
(`detector.scale`, `card.skin_extent_px`) -> one pass if it fits in `card.tile_size`, otherwise
overlapping tiles (`detector.tiling`) -> letterbox to a stride multiple ->
batched onnxruntime call -> decode (1, 4+nc, N) -> per-input NMS -> back to photo pixels -> merge.
The same runs on the mirrored photo: its agreement with the normal pass gives the uncertainty,
and with `card.tta_flip` both passes are fused into the answer.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from detector.embedding import EmbeddingOod
from detector.export import EMBEDDING_OUTPUT, ensure_onnx
from detector.findings import Detection, Finding
from detector.grader import Evidence, Grader, severity_from
from detector.grading import distance_to_boundary
from detector.model_card import ModelCard
from detector.nms import fuse_passes, nms
from detector.scale import Region, ScalePlan, apply_plan, locate_skin, plan_scale, to_crop, to_photo
from detector.tiling import Letterbox, Tile, in_core, letterbox, make_tiles, stride_shape, unletterbox
from detector.uncertainty import estimate

DEFAULT_STRIDE = 32
logger = logging.getLogger(__name__)


class SessionLike(Protocol):
    """The part of `onnxruntime.InferenceSession` we use (tests substitute a fake)."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class _Boxes:
    """Detections of one pass in some coordinate frame: xyxy boxes, scores, class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> _Boxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64))

    def select(self, mask_or_index: np.ndarray) -> _Boxes:
        return _Boxes(self.boxes[mask_or_index], self.scores[mask_or_index], self.classes[mask_or_index])

    @classmethod
    def concat(cls, parts: list[_Boxes]) -> _Boxes:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.boxes for p in parts]).astype(np.float32),
            np.concatenate([p.scores for p in parts]).astype(np.float32),
            np.concatenate([p.classes for p in parts]).astype(np.int64),
        )


@dataclass(frozen=True, slots=True)
class _Input:
    """One network input cut from one pass's image, and how to map its boxes back."""

    pass_index: int
    tile: Tile
    fit: Letterbox
    tensor: np.ndarray  # 3 x H x W float32


class Detector:
    """Loaded model + card; `predict` is thread-compatible (onnxruntime sessions are)."""

    def __init__(
        self,
        card: ModelCard,
        session: SessionLike,
        *,
        input_name: str = "images",
        stride: int = DEFAULT_STRIDE,
        grader: Grader | None = None,
        ood: EmbeddingOod | None = None,
    ) -> None:
        if grader is not None and grader.operating_conf < min(card.operating_conf, card.uncertainty_band[0]):
            # Its features would need findings this card never keeps: grade by bands rather than wrongly.
            logger.warning("grader of %s counts below the detector's floor: refit it; grading by bands", card.version)
            grader = None
        self._card = card
        self._grader = grader
        self._ood = ood
        self._session = session
        self._input_name = input_name
        self._stride = stride

    @classmethod
    def load(cls, model_dir: Path, cache_dir: Path, *, threads: int | None = None) -> Detector:
        """Read `model.json`, export the weights to ONNX if not cached yet, open a session."""
        card = ModelCard.load(Path(model_dir))
        onnx_path = ensure_onnx(card.weights_path(Path(model_dir)), Path(cache_dir), card.imgsz)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Inputs vary in shape (each photo's normalised skin crop): a memory pattern is planned and kept per
        # shape, which grew the arena by ~100 MB over a few photos for no speed gain at batch 1.
        options.enable_mem_pattern = False
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        meta = session.get_modelmeta().custom_metadata_map
        names = ast.literal_eval(meta["names"]) if "names" in meta else None
        if names is not None and len(names) != len(card.class_names):
            raise ValueError(f"{onnx_path.name} has {len(names)} classes, card lists {len(card.class_names)}")
        stride = int(meta.get("stride", DEFAULT_STRIDE))
        grader = Grader.load(Path(model_dir) / card.grader) if card.grader else None
        ood = EmbeddingOod.load(Path(model_dir) / card.embedding_ood) if card.embedding_ood else None
        has_embedding = any(o.name == EMBEDDING_OUTPUT for o in session.get_outputs())
        if ood is not None and not has_embedding:
            logger.warning("%s has embedding statistics but its ONNX no embedding output: no OOD check", card.version)
        return cls(card, session, input_name=session.get_inputs()[0].name, stride=stride, grader=grader, ood=ood)

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def grader(self) -> Grader | None:
        return self._grader

    @property
    def embedding_ood(self) -> EmbeddingOod | None:
        return self._ood

    @property
    def version(self) -> str:
        return self._card.version

    def plan(self, image: np.ndarray, skin: Region | None = None) -> ScalePlan:
        """How this photo is cropped and resized before the network sees it."""
        height, width = image.shape[:2]
        card = self._card
        if card.skin_extent_px is not None and skin is None:
            skin = locate_skin(image)
        return plan_scale(
            width,
            height,
            skin,
            card.skin_extent_px,
            upscale=card.upscale,
            tolerance=card.scale_tolerance,
            max_side=card.tile_size,
        )

    def predict(self, image: np.ndarray, conf: float | None = None, *, skin: Region | None = None) -> Detection:
        """Detect lesions on an RGB uint8 photo (H x W x 3); boxes come back in the photo's pixels.

        Findings are those with confidence >= `conf` (default: the card's operating threshold);
        count and grade always use the operating threshold, so a low `conf` (mAP runs) never
        changes them. `skin` is the photo's skin region when the caller already measured it.
        """
        card = self._card
        _check_image(image)
        requested = card.operating_conf if conf is None else float(conf)
        # Count, grade and uncertainty come from the passes cut at a fixed floor, so asking for a lower
        # `conf` (mAP runs) only lists more findings. NMS and max_det keep the best-scored boxes, so cutting
        # a lower-floor pass at `base_floor` gives exactly the pass that `base_floor` would have given.
        base_floor = min(card.operating_conf, card.uncertainty_band[0])
        floor = min(requested, base_floor)
        height, width = image.shape[:2]

        plan = self.plan(image, skin)
        scaled = apply_plan(image, plan)
        mirrored = np.ascontiguousarray(scaled[:, ::-1])
        (normal, flipped), embedding = self._detect_passes([scaled, mirrored], floor)
        flipped = _unflip(flipped, scaled.shape[1])
        normal = _to_photo(normal, plan, scaled.shape[:2], width, height)
        flipped = _to_photo(flipped, plan, scaled.shape[:2], width, height)

        def at_floor(cut: float) -> tuple[_Boxes, _Boxes]:
            return normal.select(np.flatnonzero(normal.scores >= cut)), flipped.select(
                np.flatnonzero(flipped.scores >= cut)
            )

        base_normal, base_flipped = at_floor(base_floor)
        counted = self._combine(base_normal, base_flipped)
        answer = counted if floor == base_floor else self._combine(normal, flipped)

        doubt = estimate(
            (base_normal.boxes, base_normal.scores),
            (base_flipped.boxes, base_flipped.scores),
            operating_conf=card.operating_conf,
            band=card.uncertainty_band,
        )
        lesion_count = int(np.count_nonzero(counted.scores >= card.operating_conf))
        # The grader sees box sizes as the network did (the normalised crop), so they do not follow capture size.
        evidence = Evidence(
            scores=counted.scores,
            boxes=to_crop(counted.boxes, plan, scaled.shape[:2]),
            normal_scores=base_normal.scores,
            flipped_scores=base_flipped.scores,
            flip_disagreement=doubt.flip_disagreement,
            low_conf_share=doubt.low_conf_share,
            width=int(scaled.shape[1]),
            height=int(scaled.shape[0]),
            embedding=embedding,
        )
        distance = None if embedding is None or self._ood is None else self._ood.distance(embedding)
        shown = answer.select(np.flatnonzero(answer.scores >= requested))
        findings = [
            Finding(
                label=card.class_names[int(c)],
                confidence=float(s),
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            )
            for b, s, c in zip(shown.boxes, shown.scores, shown.classes, strict=True)
        ]
        return Detection(
            findings=findings,
            lesion_count=lesion_count,
            severity=severity_from(self._grader, evidence, lesion_count, card.grade_bands),
            uncertainty=doubt.score,
            model_version=card.version,
            operating_conf=card.operating_conf,
            extras={
                "flip_disagreement": round(doubt.flip_disagreement, 4),
                "low_conf_share": round(doubt.low_conf_share, 4),
                "grade_margin": distance_to_boundary(lesion_count, card.grade_bands),
                "tiles": len(make_tiles(scaled.shape[0], scaled.shape[1], card.tile_size, card.tile_overlap)),
                "scale": round(plan.factor, 4),
                "crop": [plan.x0, plan.y0, plan.x1, plan.y1],
                "skin_extent": None if plan.skin is None else round(plan.skin.extent, 1),
                "tta_flip": card.tta_flip,
                # the pipeline refuses the photo above the limit (issue 12); None: no stats or no embedding
                "embedding_distance": None if distance is None else round(distance, 3),
                "embedding_limit": None if self._ood is None or distance is None else self._ood.limit,
            },
            evidence=evidence,
        )

    def _combine(self, normal: _Boxes, flipped: _Boxes) -> _Boxes:
        """The served answer: both passes fused when flip TTA is on, else the normal pass."""
        card = self._card
        if not card.tta_flip:
            return normal
        boxes, scores, leads = fuse_passes(
            [(normal.boxes, normal.scores), (flipped.boxes, flipped.scores)], card.iou, card.max_det
        )
        return _Boxes(boxes, scores, np.concatenate([normal.classes, flipped.classes])[leads])

    def _detect_passes(self, images: list[np.ndarray], floor: float) -> tuple[list[_Boxes], np.ndarray | None]:
        """Run every image (tiled when larger than a tile) through the network, batching tiles.

        Also returns the photo's embedding: the network's pooled features, mean over every input (tiles of
        both passes), so it does not depend on how the photo was cut; None when the ONNX has no such output.
        """
        card = self._card
        inputs: list[_Input] = []
        for index, img in enumerate(images):
            tiles = make_tiles(img.shape[0], img.shape[1], card.tile_size, card.tile_overlap)
            for tile in tiles:
                crop = img[tile.y0 : tile.y1, tile.x0 : tile.x1]
                fitted, fit = letterbox(crop, stride_shape(tile.height, tile.width, self._stride), scaleup=False)
                tensor = fitted.transpose(2, 0, 1).astype(np.float32) / 255.0
                inputs.append(_Input(index, tile, fit, tensor))

        per_pass: list[list[_Boxes]] = [[] for _ in images]
        pooled: list[np.ndarray] = []
        for start in range(0, len(inputs), card.tile_batch):
            chunk = inputs[start : start + card.tile_batch]
            batch = np.stack([item.tensor for item in chunk])
            outputs = self._session.run(None, {self._input_name: batch})
            raw = np.asarray(outputs[0])
            if len(outputs) > 1:
                pooled.append(np.asarray(outputs[1], np.float32).reshape(len(chunk), -1))
            for item, prediction in zip(chunk, raw, strict=True):
                found = self._decode(prediction, floor)
                boxes = unletterbox(found.boxes, item.fit)
                boxes[:, [0, 2]] += item.tile.x0
                boxes[:, [1, 3]] += item.tile.y0
                # Keep a box only in the tile whose core holds its centre (see detector.tiling).
                found = _Boxes(boxes, found.scores, found.classes).select(in_core(boxes, item.tile))
                per_pass[item.pass_index].append(found)

        merged: list[_Boxes] = []
        for parts in per_pass:
            joined = _Boxes.concat(parts)
            merged.append(joined.select(nms(joined.boxes, joined.scores, card.iou, card.max_det)))
        embedding = np.concatenate(pooled).mean(axis=0, dtype=np.float64).astype(np.float32) if pooled else None
        return merged, embedding

    def _decode(self, prediction: np.ndarray, floor: float) -> _Boxes:
        """(4+nc, N) YOLOv8 head output -> NMS'd xyxy boxes in network-input pixels."""
        nc = len(self._card.class_names)
        if prediction.ndim != 2 or prediction.shape[0] != 4 + nc:
            raise ValueError(f"expected a (4+{nc}, N) prediction, got {prediction.shape}")
        class_scores = prediction[4:]
        classes = class_scores.argmax(axis=0)
        scores = class_scores.max(axis=0)
        keep = np.flatnonzero(scores >= floor)
        if not keep.size:
            return _Boxes.empty()
        cx, cy, w, h = prediction[:4, keep]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
        found = _Boxes(boxes, scores[keep].astype(np.float32), classes[keep].astype(np.int64))
        return found.select(nms(found.boxes, found.scores, self._card.iou, self._card.max_det))


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be an H x W x 3 uint8 RGB array")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small: {image.shape[1]}x{image.shape[0]}")


def _unflip(found: _Boxes, width: int) -> _Boxes:
    """Boxes found on the mirrored image, in the unmirrored image's coordinates."""
    boxes = found.boxes.copy()
    boxes[:, 0], boxes[:, 2] = width - found.boxes[:, 2], width - found.boxes[:, 0]
    return _Boxes(boxes, found.scores, found.classes)


def _to_photo(found: _Boxes, plan: ScalePlan, scaled_shape: tuple[int, int], width: int, height: int) -> _Boxes:
    """From the network's crop back to the photo's pixels, clipped; boxes clipped to nothing go."""
    boxes = to_photo(found.boxes, plan, scaled_shape)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return _Boxes(boxes.astype(np.float32), found.scores, found.classes).select(valid)
