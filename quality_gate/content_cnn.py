"""A small CNN's view of what the photo shows: the `content_logit` measure (is this a close-up of skin at all?).

The not_skin_photo checks of `ood.py` read colour and texture statistics, and a photo of something skin-coloured
with a fine texture of its own (a cheetah's fur seen close, a wooden table) can sit among skin photos on every one of
them (issue 12: 31% of a cheetah close-up's crops were refused). A network sees the pattern itself: spots, strands,
grain and edges of objects against pores, lesions and the shading of a face.

The input is the half-size working copy (`policy.image_measures`) squeezed to `INPUT_SIDE` px, sRGB scaled about
zero, nothing else: colour and texture are what it is for. The network (`bench/content_cnn.py`: six 3x3
convolutions on three planes) is trained from scratch on the gate's fit sample of ACNE04 `train` photos as skin,
cropped, exposed, tinted, blurred and lit badly (other codes speak for those faults), against generated non-skin
images, crops of those photos' backgrounds and real photos that show no skin. It ships as ONNX next to this file;
larger logits are less like skin. Its threshold lives with the other verdict thresholds, chosen on the selection
part of `valid`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from quality_gate.onnx_models import onnx_session

MODEL_PATH = Path(__file__).with_name("content_cnn.onnx")
INPUT_SIDE = 96
MEAN, SCALE = 0.45, 0.25  # sRGB in 0..1 -> about -2..2 (as the lighting network's)


def model_input(half: np.ndarray) -> np.ndarray:
    """(1, 3, INPUT_SIDE, INPUT_SIDE) float32: the half-size working copy squeezed to a square (INTER_AREA; the
    network was trained on crops of many aspects squeezed the same way), sRGB scaled about zero. Training and serving
    share it."""
    small = cv2.resize(half, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
    planes = (small.astype(np.float32) * (1 / (255 * SCALE)) - MEAN / SCALE).transpose(2, 0, 1)
    return np.ascontiguousarray(planes[None], dtype=np.float32)


def content_logit(half: np.ndarray) -> float:
    """The network's logit that the photo is not a photo of skin; larger is less like skin."""
    session = onnx_session(MODEL_PATH)
    (out,) = session.run(None, {session.get_inputs()[0].name: model_input(half)})
    return float(np.asarray(out).reshape(-1)[0])
