"""Where the detector responds: its objectness map, computed from the served ONNX output.

For every anchor of the YOLOv8 head (one per grid cell per stride) the highest class score is that anchor's
"objectness"; scattered (max) onto a grid over the photo at the anchors' centres, it shows where the network
sees lesion-like evidence, including below the operating threshold: a class-activation-style map that needs no
gradients. Runs the same skin crop, scale normalisation and tiling as `Detector.predict` (never changes it), without NMS or flip.

`score_mass` condenses the map into one number for routing: the summed evidence of local peaks that stayed
below the operating threshold ("lesions the model almost saw").
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from detector.onnx_runtime import Detector
from detector.scale import apply_plan
from detector.tiling import letterbox, make_tiles, stride_shape

CELL = 8  # photo pixels per heatmap cell


def objectness_map(detector: Detector, image: np.ndarray, cell: int = CELL) -> np.ndarray:
    """A (ceil(H / cell), ceil(W / cell)) float32 grid in [0, 1] of the highest anchor score in each cell.

    Reads the detector's ONNX session, card and stride (the same objects `predict` uses); `image` is RGB uint8.
    """
    card = detector.card
    session, input_name, stride = (
        detector._session,
        detector._input_name,
        detector._stride,
    )  # the objects predict() uses
    height, width = image.shape[:2]
    plan = detector.plan(image)  # the crop and scale predict() feeds the network
    scaled = apply_plan(image, plan)
    sx, sy = (plan.x1 - plan.x0) / scaled.shape[1], (plan.y1 - plan.y0) / scaled.shape[0]
    grid = np.zeros((-(-height // cell), -(-width // cell)), dtype=np.float32)
    tiles = make_tiles(scaled.shape[0], scaled.shape[1], card.tile_size, card.tile_overlap)
    for start in range(0, len(tiles), card.tile_batch):
        chunk = tiles[start : start + card.tile_batch]
        tensors, fits = [], []
        for tile in chunk:
            crop = scaled[tile.y0 : tile.y1, tile.x0 : tile.x1]
            fitted, fit = letterbox(crop, stride_shape(tile.height, tile.width, stride), scaleup=False)
            tensors.append(fitted.transpose(2, 0, 1).astype(np.float32) / 255.0)
            fits.append(fit)
        raw = np.asarray(session.run(None, {input_name: np.stack(tensors)})[0])
        for tile, fit, prediction in zip(chunk, fits, raw, strict=True):
            scores = prediction[4:].max(axis=0)
            cx = ((prediction[0] - fit.pad_x) / fit.scale + tile.x0) * sx + plan.x0
            cy = ((prediction[1] - fit.pad_y) / fit.scale + tile.y0) * sy + plan.y0
            inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
            cols = (cx[inside] // cell).astype(np.int64)
            rows = (cy[inside] // cell).astype(np.int64)
            np.maximum.at(grid, (rows, cols), scores[inside].astype(np.float32))
    return grid


def score_mass(grid: np.ndarray, *, below: float, floor: float = 0.05) -> float:
    """Summed score of the map's local peaks (3x3 maxima) in [floor, below): evidence under the threshold."""
    if grid.size == 0:
        return 0.0
    peaks = grid == cv2.dilate(grid, np.ones((3, 3), np.uint8))
    chosen = peaks & (grid >= floor) & (grid < below)
    return float(grid[chosen].sum())


def heatmap_png(grid: np.ndarray, width: int, height: int) -> bytes:
    """The map as an RGBA PNG of the photo's size: a warm colour whose opacity follows the score (the page
    lays it over the photo; transparent where the detector is silent)."""
    scaled = cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
    peak = max(float(grid.max()), 1e-6) if grid.size else 1.0
    norm = np.clip(scaled / peak, 0.0, 1.0)
    coloured = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    alpha = (np.sqrt(norm) * 200).astype(np.uint8)
    rgba = np.dstack([coloured, alpha])
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
