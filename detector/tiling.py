"""Geometry of cutting a large photo into overlapping model inputs and mapping boxes back.

Small lesions (20-40 px) vanish when a 4000 px photo is shrunk to 640, so large photos are cut
into `tile` squares at native resolution. Each tile owns a *core*: the part of the image closer to
it than to its neighbours (cores partition the image). A box is kept only by the tile whose core
holds its centre, so a lesion cut by one tile's edge is taken from the neighbour that sees it
whole, as long as the lesion is smaller than the overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # Ultralytics' letterbox grey


@dataclass(frozen=True, slots=True)
class Tile:
    """A window [x0, x1) x [y0, y1) of the image and the core [cx0, cx1) x [cy0, cy1) it owns."""

    x0: int
    y0: int
    x1: int
    y1: int
    cx0: float
    cy0: float
    cx1: float
    cy1: float

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles along one axis: evenly spread, first at 0, last ending at `length`.

    Neighbours overlap by at least `overlap * tile` pixels (more when spreading evenly needs it).
    """
    if length <= 0 or tile <= 0:
        raise ValueError("length and tile must be positive")
    if not 0.0 <= overlap < 1.0:
        raise ValueError("overlap must be in [0, 1)")
    if length <= tile:
        return [0]
    step = max(1, math.floor(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _cores(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """Split the axis at the middle of each overlap so every pixel belongs to exactly one tile."""
    cuts = [(starts[i + 1] + starts[i] + tile) / 2.0 for i in range(len(starts) - 1)]
    edges = [0.0, *cuts, float(length)]
    return [(edges[i], edges[i + 1]) for i in range(len(starts))]


def make_tiles(height: int, width: int, tile: int, overlap: float) -> list[Tile]:
    """Tiles (row-major) covering an image; all share one shape so they batch in one call."""
    xs, ys = tile_starts(width, tile, overlap), tile_starts(height, tile, overlap)
    tw, th = min(tile, width), min(tile, height)
    x_cores, y_cores = _cores(xs, tw, width), _cores(ys, th, height)
    return [
        Tile(x, y, x + tw, y + th, cx0, cy0, cx1, cy1)
        for y, (cy0, cy1) in zip(ys, y_cores, strict=True)
        for x, (cx0, cx1) in zip(xs, x_cores, strict=True)
    ]


def in_core(boxes: np.ndarray, tile: Tile) -> np.ndarray:
    """Mask of photo-space boxes (N, 4 xyxy) whose centre lies in the tile's core."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    return (cx >= tile.cx0) & (cx < tile.cx1) & (cy >= tile.cy0) & (cy < tile.cy1)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the network input: input = image * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: float
    pad_y: float


def stride_shape(height: int, width: int, stride: int) -> tuple[int, int]:
    """Smallest shape at least (height, width) whose sides are stride multiples."""
    return math.ceil(height / stride) * stride, math.ceil(width / stride) * stride


def letterbox(image: np.ndarray, shape: tuple[int, int], *, scaleup: bool = True) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio to fit `shape` (h, w) and pad centred with grey, like Ultralytics."""
    h, w = image.shape[:2]
    scale = min(shape[0] / h, shape[1] / w)
    if not scaleup:
        scale = min(scale, 1.0)
    new_w, new_h = round(w * scale), round(h * scale)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_w, pad_h = (shape[1] - new_w) / 2.0, (shape[0] - new_h) / 2.0
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(
            image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE)
        )
    return image, Letterbox(scale=scale, pad_x=float(left), pad_y=float(top))


def unletterbox(boxes: np.ndarray, fit: Letterbox) -> np.ndarray:
    """Map network-input xyxy boxes back to the letterboxed image's own pixels."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - fit.pad_x) / fit.scale
    out[:, [1, 3]] = (out[:, [1, 3]] - fit.pad_y) / fit.scale
    return out
