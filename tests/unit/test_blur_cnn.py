"""The gate's blur CNN (quality_gate/blur_cnn.py): which patches it reads, the shipped network's view of blur on
code-made texture, the gate's use of it, and the training script's parts (bench/blur_cnn.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import blur_cnn as train
from bench import gate_data as gd
from bench.lighting_cnn import sweep_threshold
from quality_gate import blur_cnn
from quality_gate.onnx_models import onnx_session
from quality_gate.policy import Thresholds, assess, judge
from tests.conftest import natural_skin, skin_photo

P = blur_cnn.PATCH


def cell(y: np.ndarray, row: int, col: int) -> np.ndarray:
    return y[row * P : (row + 1) * P, col * P : (col + 1) * P]


def standardised(patch: np.ndarray) -> np.ndarray:
    patch = patch.astype(np.float32)
    return (patch - patch.mean()) / max(float(patch.std()), blur_cnn.MIN_SPREAD)


def test_patches_come_from_the_face_and_its_most_detailed_cells_first() -> None:
    rng = np.random.default_rng(0)
    y = np.clip(128 + rng.normal(0, 3, (480, 640)), 0, 255).astype(np.uint8)  # faint texture everywhere
    y[:, 384:] = np.clip(128 + rng.normal(0, 40, (480, 256)), 0, 255).astype(np.uint8)  # busiest: not the face
    y[64:192, 64:192] = np.clip(128 + rng.normal(0, 15, (128, 128)), 0, 255).astype(np.uint8)  # 2 x 2 cells on it
    face = np.zeros(y.shape, bool)
    face[:, :320] = True  # five columns of cells
    x = blur_cnn.patch_input(y, face)
    assert x.shape == (blur_cnn.PATCHES, 1, P, P) and x.dtype == np.float32
    busiest = [standardised(cell(y, r, c)) for r, c in ((1, 1), (1, 2), (2, 1), (2, 2))]
    assert all(any(np.allclose(x[k, 0], b, atol=1e-5) for b in busiest) for k in range(4))
    face_cells = [standardised(cell(y, r, c)) for r in range(7) for c in range(5)]
    assert all(any(np.allclose(patch[0], f, atol=1e-5) for f in face_cells) for patch in x)  # none off the face


def test_a_small_face_is_judged_first_and_the_rest_fills_in() -> None:
    rng = np.random.default_rng(1)
    y = np.clip(128 + rng.normal(0, 20, (480, 640)), 0, 255).astype(np.uint8)
    face = np.zeros(y.shape, bool)
    face[0:64, 0:128] = True  # two cells
    x = blur_cnn.patch_input(y, face)
    assert len(x) == blur_cnn.PATCHES
    face_cells = [standardised(cell(y, 0, 0)), standardised(cell(y, 0, 1))]
    assert all(any(np.allclose(x[k, 0], f, atol=1e-5) for f in face_cells) for k in range(2))


def test_patches_are_standardised_and_a_flat_one_stays_flat() -> None:
    y = np.full((128, 128), 90, np.uint8)
    y[:64, :64] = np.clip(90 + np.random.default_rng(2).normal(0, 25, (64, 64)), 0, 255).astype(np.uint8)
    y[64:, 64:] = 91 + (np.arange(64) % 2)[None, :]  # a contrast of 1 grey level: under MIN_SPREAD
    x = blur_cnn.patch_input(y, np.ones(y.shape, bool))
    assert len(x) == 4
    busy = x[0, 0]
    assert abs(float(busy.mean())) < 1e-4 and float(busy.std()) == pytest.approx(1.0, abs=1e-3)
    assert np.abs(x[1:]).max() <= 0.5 / blur_cnn.MIN_SPREAD + 1e-6  # not blown up into noise


def test_a_photo_smaller_than_a_patch_has_no_blur_logit() -> None:
    y = np.full((40, 60), 120, np.uint8)
    assert blur_cnn.patch_input(y, np.ones(y.shape, bool)).shape == (0, 1, P, P)
    assert blur_cnn.blur_reading(y, np.ones(y.shape, bool)) == (0.0, 0.0)


def test_patches_too_dark_to_show_texture_are_unreadable_and_blurred_or_textured_ones_are_not() -> None:
    """Flat and dark (a photo far too dark): unreadable. Flat at a normal light is what blur leaves, and texture in
    the dark is still texture: both are read."""
    rng = np.random.default_rng(6)
    texture = rng.normal(0, 1, (256, 256))
    everywhere = np.ones((256, 256), bool)

    def share(level: float, spread: float) -> float:
        y = np.clip(level + spread * texture, 0, 255).astype(np.uint8)
        return blur_cnn.unreadable_share(blur_cnn.pick_patches(y, everywhere))

    assert share(24, 1.5) == 1.0  # 12% of a normal skin's light: its texture spans ~1.5 grey levels
    assert share(150, 1.5) == 0.0  # as flat, at a normal light: blur's doing, for the network to judge
    assert share(24, 12) == 0.0  # dark but textured
    assert blur_cnn.unreadable_share(np.zeros((0, P, P), np.float32)) == 0.0


@pytest.mark.parametrize("light", [0.12, 0.2])
def test_a_photo_too_dark_to_show_its_texture_is_refused_as_too_dark_not_blurry(light: float) -> None:
    """Code-made skin at a fifth or less of its light (the demo's dark photo: 12%): its texture spans under
    `MIN_SPREAD` grey levels and the network reads it as soft (its logit far above the threshold); the policy
    leaves that logit unjudged; with the guard off (`max_blur_unreadable` over 1) it would refuse."""
    image = (skin_photo(640, 480, seed=7) * light).astype(np.uint8)
    report = assess(image)
    assert report.measures["blur_unreadable"] >= Thresholds().max_blur_unreadable
    assert report.measures["blur_logit"] > Thresholds().max_blur_logit
    assert report.retake_codes == ["too_dark"]
    assert "blurry" in judge(report.measures, Thresholds(max_blur_unreadable=1.01)).retake_codes


@pytest.mark.parametrize("seed", [1, 2])
def test_the_shipped_network_sees_focus_and_motion_blur_but_not_noise_or_jpeg(seed: int) -> None:
    """On code-made texture with a photo's spectrum (the network never saw it): the sharp texture, in JPEG or with
    a phone's noise, reads well below the shipped threshold; blurred, above it; smeared, far above the sharp one."""
    limit = Thresholds().max_blur_logit
    skin = natural_skin(640, 480, seed=seed)

    def logit(image: np.ndarray) -> float:
        return assess(image).measures["blur_logit"]

    sharp = logit(skin)
    assert max(sharp, logit(gd.jpeg(skin, 70)), logit(gd.noise_and_jpeg(3, 85)(skin))) < limit - 4.0
    assert logit(gd.gaussian_blur(2)(skin)) > limit + 1.0
    assert logit(gd.gaussian_blur(3)(skin)) > limit + 6.0
    assert min(logit(gd.motion_blur(15, 30)(skin)), logit(gd.motion_blur(20, 90)(skin))) > sharp + 4.0


def test_the_gate_refuses_as_blurry_above_the_blur_threshold_only_with_the_learned_verdict() -> None:
    measures = dict(assess(skin_photo(640, 480, seed=3)).measures)
    limit = 1.0
    t = Thresholds(max_blur_logit=limit)
    assert "blurry" not in judge(measures | {"blur_logit": limit - 0.5}, t).retake_codes
    report = judge(measures | {"blur_logit": limit + 0.5}, t)
    assert "blurry" in report.retake_codes
    assert (
        "blurry" not in judge(measures | {"blur_logit": limit + 0.5}, Thresholds(max_blur_logit=math.inf)).retake_codes
    )
    lenient = Thresholds(max_blur_logit=limit, learned_offset=1.0)  # an operator's "more lenient" moves it too
    assert "blurry" not in judge(measures | {"blur_logit": limit + 0.5}, lenient).retake_codes
    hand_only = Thresholds(max_blur_logit=limit, learned_verdict=False)
    assert "blurry" not in judge(measures | {"blur_logit": limit + 0.5}, hand_only).retake_codes


def test_the_training_path_feeds_the_network_what_the_gate_does() -> None:
    image = natural_skin(640, 480, seed=4)
    x = train.served_patches(image)
    session = onnx_session(blur_cnn.MODEL_PATH)
    logit = float(session.run(None, {session.get_inputs()[0].name: x})[0].mean())
    assert assess(image).measures["blur_logit"] == pytest.approx(logit, abs=1e-6)


def test_training_copies_are_labelled_patch_sets_from_their_own_seed() -> None:
    images = [natural_skin(320, 256, seed=s) for s in range(2)]
    data = train.Copies(images, train.Config(epochs=2, per_photo=2), seed=5)
    assert len(data) == 2 * 2 * 2
    labels = set()
    for i in range(len(data)):
        x, y = data[i]
        assert x.shape == (blur_cnn.PATCHES, 1, P, P) and x.dtype == np.float32
        labels.add(float(y))
    again, _ = data[3]
    assert np.array_equal(data[3][0], again)  # reproducible: a worker makes the same copy
    assert labels <= {0.0, 1.0}


def test_fit_and_export_give_a_graph_of_any_number_of_patches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for k in range(2):
        Image.fromarray(natural_skin(320, 256, seed=k)).save(data / "images" / f"p{k}.jpg", quality=95)
    train.main(["fit", "--data", str(data), "--configs", "w8", "--epochs", "1", "--out", str(tmp_path)])
    onnx = tmp_path / "w8.onnx"
    train.main(["export", "--weights", str(tmp_path / "w8.pt"), "--onnx", str(onnx)])
    session = onnx_session(onnx)
    for n in (1, 3, blur_cnn.PATCHES):
        out = session.run(None, {"patches": np.zeros((n, 1, P, P), np.float32)})[0]
        assert out.shape == (n, 1)


def test_the_threshold_sweep_picks_the_lowest_logit_within_the_budget_on_selection_only(tmp_path: Path) -> None:
    measures = dict(assess(skin_photo(640, 480, seed=3)).measures)

    def row(part: str, label: str | None, logit: float) -> dict:
        kind = "good" if label is None else "gaussian blur s=2"
        return {
            "set": "valid",
            "part": part,
            "kind": kind,
            "label": label,
            "measures": measures | {"blur_logit": logit},
        }

    rows = [row("selection", None, v) for v in (-3.0, -1.0, 0.5)] + [row("selection", "blurry", v) for v in (2, 4, 6)]
    rows.append(row("report", None, 5.0))  # never read: a report row would hold the threshold above 5
    plot = tmp_path / "sweep.png"
    chosen = sweep_threshold(rows, "max_blur_logit", train.BLUR_LABELS, 0.0, 6.0, -2.0, 0.25, plot)
    assert chosen == 0.5  # the good row at 0.5 stays accepted (a check refuses above its threshold)
    assert plot.stat().st_size > 10_000
