"""A small CNN's view of focus and motion blur at full working-copy resolution: the `blur_logit` measure.

The hand-made blur measures (detail ratios, Laplacian sharpness, edge width) each read one summary of the face's
texture, and noise a phone adds after the blur, or skin with little texture, moves them as blur does: on the
holdout, a Gaussian blur of sigma 2 followed by noise and JPEG was caught in 84% of photos. A network that reads
the texture itself, patch by patch, learns what blur leaves whatever the noise (issue 12).

The input is `PATCHES` luma patches of `PATCH` px of the 640 px working copy (`patch_input`): the cells of a grid
mostly on the face (`MIN_COVER`) with the most detail for their light, each standardised, so neither exposure nor
the skin's contrast reads as blur (down to `MIN_SPREAD`: texture spanning fewer grey levels is left nearly flat, not
blown up into noise). A flat patch reads as soft; in a photo far too dark, that is the light, not the focus: when most
picked patches are flat and dark (`unreadable_share`, the `blur_unreadable` measure) the policy leaves the logit
unjudged and `too_dark` speaks. The network (`bench/blur_cnn.py`: six 3x3 convolutions on one plane) is trained
from scratch on the gate's fit sample of ACNE04 `train` photos with generated focus and motion blur as faults, and
noise, JPEG, sharpening and slight softening as fine; the measure is the mean of the patches' logits. It ships as
ONNX next to this file; its threshold lives with the other verdict thresholds, chosen on the selection part of `valid`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from quality_gate.onnx_models import onnx_session

MODEL_PATH = Path(__file__).with_name("blur_cnn.onnx")
PATCH = 64  # px of the working copy: a few pores and an edge or two
PATCHES = 8  # patches judged per photo
MIN_COVER = 0.75  # share of a cell that must be face for it to be picked before any other
MIN_SPREAD = 4.0  # grey levels: a flat patch is standardised by this, not blown up into noise
STRIDE = 4  # rows (and cover columns) read to rank the cells
# grey levels: a flat patch (spread under MIN_SPREAD) darker than this is unreadable rather than blurred: skin's texture
# scales with its light in sRGB, and at a quarter of full scale or less a few grey levels is all it spans
DARK_LEVEL = 64.0


def pick_patches(y: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(n, PATCH, PATCH) float32, n <= `PATCHES`: the grid cells of uint8 luma `y` picked for judging, as they are.

    Cells at least `MIN_COVER` face come first, then by detail (mean absolute difference between neighbours over
    the cell's mean luma + 8: texture for its light), ties by position. Detail, light and cover are read on every
    `STRIDE`th row (and column, for the cover): a ranking needs no more, and the full grid costs ~2 ms."""
    rows, cols = y.shape[0] // PATCH, y.shape[1] // PATCH
    if rows == 0 or cols == 0:
        return np.zeros((0, PATCH, PATCH), np.float32)
    size = (cols, rows)
    lines = np.ascontiguousarray(y[: rows * PATCH : STRIDE, : cols * PATCH])
    below = np.ascontiguousarray(y[1 : rows * PATCH : STRIDE, : cols * PATCH])
    detail = cv2.add(cv2.absdiff(lines, below), 0.0, dtype=cv2.CV_32F)
    detail[:, 1:] += cv2.absdiff(lines[:, 1:], lines[:, :-1])
    detail = cv2.resize(detail, size, interpolation=cv2.INTER_AREA)
    level = cv2.resize(lines, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    sampled = face[: rows * PATCH : STRIDE, : cols * PATCH : STRIDE].astype(np.float32)
    cover = cv2.resize(sampled, size, interpolation=cv2.INTER_AREA)
    key = detail / (level + 8.0) + (cover >= MIN_COVER) * 1e3
    order = np.argsort(-key.ravel(), kind="stable")[:PATCHES]
    return np.stack(
        [
            y[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH]
            for r, c in zip(*np.divmod(order, cols), strict=True)
        ]
    ).astype(np.float32)


Moments = tuple[np.ndarray, np.ndarray]  # each picked patch's mean and standard deviation, (n,) each


def moments(chosen: np.ndarray) -> Moments:
    return chosen.mean(axis=(1, 2)), chosen.std(axis=(1, 2))


def standardise(chosen: np.ndarray, stats: Moments | None = None) -> np.ndarray:
    """(n, 1, PATCH, PATCH): each picked patch less its mean, over its spread floored at `MIN_SPREAD`."""
    mean, spread = stats or moments(chosen)
    return ((chosen - mean[:, None, None]) / np.maximum(spread, MIN_SPREAD)[:, None, None])[:, None]


def patch_input(y: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(n, 1, PATCH, PATCH) float32, n <= `PATCHES`: what the network reads (`pick_patches`, `standardise`).
    Training and serving share it."""
    return standardise(pick_patches(y, face))


def unreadable_share(chosen: np.ndarray, stats: Moments | None = None) -> float:
    """Share of the picked patches (`pick_patches`) both flat (spread under `MIN_SPREAD`) and dark (mean under
    `DARK_LEVEL`): texture too faint for the light to show, not taken away by blur. 0.0 without patches."""
    if not len(chosen):
        return 0.0
    mean, spread = stats or moments(chosen)
    return float(np.mean((spread < MIN_SPREAD) & (mean < DARK_LEVEL)))


def blur_reading(y: np.ndarray, face: np.ndarray) -> tuple[float, float]:
    """(logit, unreadable): the network's mean logit over the picked patches that the photo is blurred (a fault;
    larger is blurrier), and the share of those patches too dark to read (`unreadable_share`; the policy does not
    judge the logit when most are). (0.0, 0.0) when no cell fits (a working copy under `PATCH` px)."""
    chosen = pick_patches(y, face)
    if not len(chosen):
        return 0.0, 0.0
    stats = moments(chosen)
    session = onnx_session(MODEL_PATH)
    (out,) = session.run(None, {session.get_inputs()[0].name: standardise(chosen, stats)})
    return float(np.asarray(out).mean()), unreadable_share(chosen, stats)
