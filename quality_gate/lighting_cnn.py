"""A small CNN's view of uneven lighting: the `lighting_logit` measure.

The hand-made lighting measures (quantiles of the skin's light, plane tilts, shadow share) catch about half of
the shadows that fall on the lesions at the false-reject budget, because ACNE04's own photos hold as much spread
of light as a mild fault (`bench/lighting_separability.py`). A shadow edge that runs across skin whose texture
goes on beyond it, or light that falls away across the whole face, is a shape: a CNN sees it on a 64 x 64 copy.

The network (`bench/lighting_cnn.py`: six 3x3 convolutions, ~125k weights, ~8M multiply-adds) is trained from
scratch on the gate's fit sample of ACNE04 `train` photos with generated side light, cast shadows, blob shadows
and spot lights as faults, and exposure, tone, blur and mild light changes as fine; it ships as ONNX next to
this file (the mean of eight such networks, one graph: four trained 40 and four 80 epochs; four of them, the `-s`
recipes, saw side light on the whole frame as well as on the lesions) and runs on onnxruntime in ~1 ms on one
thread. Its threshold lives with the other verdict thresholds and is chosen on the selection
part of `valid`.

The input's exposure is brought into the training photos' range first (`EXPOSURE_BAND`): the networks had seen
photos at most ~2.5 stops off, and read a photo 3 stops dark all over as unevenly lit. The 40-epoch pair was
trained before that step (it leaves the 90% of ACNE04 photos inside the band untouched), the 80-epoch pair with it.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from quality_gate.measures import LINEAR_LUT, srgb_from_linear
from quality_gate.onnx_models import onnx_session

MODEL_PATH = Path(__file__).with_name("lighting_cnn.onnx")
INPUT_SIDE = 64
MEAN, SCALE = 0.45, 0.25  # sRGB in 0..1 -> about -2..2


# log2 of the 95th percentile of linear luma, 5th-95th percentile over the training photos: a copy exposed outside
# this band is brought to its edge (uniformly, in linear light), so the network judges light within its range
EXPOSURE_QUANTILE = 0.95
EXPOSURE_BAND = (-2.05, -0.41)
# the log-light plane (`model_input(log_light=True)`): stops of linear luma, floored ~10 stops down (JPEG noise),
# centred and scaled to about -2..2 over ACNE04 photos brought into the band above
LOG_LIGHT_FLOOR = 2.0**-10
LOG_LIGHT_CENTRE, LOG_LIGHT_SCALE = -3.0, 2.0


def model_input(rgb: np.ndarray, log_light: bool = False) -> np.ndarray:
    """(1, 3, 64, 64) float32: the photo squeezed to a square (INTER_AREA, shape not kept: the network was
    trained on squeezed crops of many aspects), its exposure brought into `EXPOSURE_BAND`, sRGB scaled about
    zero. Training and serving share it. With `log_light`, a fourth plane: log2 of the linear luma (after the same
    exposure step), where light multiplies the skin's own reflectance, so a shadow or a fall-off adds a smooth
    field to it (`LOG_LIGHT_CENTRE`, `LOG_LIGHT_SCALE`)."""
    small = cv2.resize(rgb, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
    linear = cv2.LUT(small, LINEAR_LUT)
    grey = cv2.cvtColor(linear, cv2.COLOR_RGB2GRAY)
    luma = grey.ravel()
    rank = round(EXPOSURE_QUANTILE * (luma.size - 1))
    level = math.log2(max(float(np.partition(luma, rank)[rank]), 1e-4))
    gain = 2.0 ** (min(max(level, EXPOSURE_BAND[0]), EXPOSURE_BAND[1]) - level)
    srgb = small.astype(np.float32) * (1 / 255) if gain == 1.0 else srgb_from_linear(linear * gain)
    planes = ((srgb - MEAN) * (1 / SCALE)).transpose(2, 0, 1)
    if log_light:
        light = np.log2(np.maximum(grey * np.float32(gain), np.float32(LOG_LIGHT_FLOOR)))
        planes = np.concatenate([planes, ((light - LOG_LIGHT_CENTRE) * (1 / LOG_LIGHT_SCALE))[None]])
    return np.ascontiguousarray(planes[None], dtype=np.float32)


def lighting_logit(rgb: np.ndarray) -> float:
    """The network's logit that the light on this photo is uneven (a fault); larger is more uneven."""
    session = onnx_session(MODEL_PATH)
    feed = session.get_inputs()[0]  # a graph trained with the log-light plane takes four planes
    (out,) = session.run(None, {feed.name: model_input(rgb, log_light=feed.shape[1] == 4)})
    return float(np.asarray(out).reshape(-1)[0])
