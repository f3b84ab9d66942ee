"""Each quality measure moves the right way on synthetic images with known exposure and blur."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from quality_gate import measures
from quality_gate.skin import skin_mask


def textured_skin(height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """Skin-tone image with pores (noise), blotches and red spots, like a close-up cheek."""
    rng = np.random.default_rng(seed)
    base = np.full((height, width, 3), (200, 150, 130), np.float32)
    blotches = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 8)
    base += (blotches / (blotches.std() + 1e-6) * 6)[..., None]
    base += rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(base, centre, int(rng.integers(2, 6)), (170, 90, 90), -1)
    return np.clip(base, 0, 255).astype(np.uint8)


def all_true(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape[:2], dtype=bool)


def test_working_copy_has_requested_long_side_both_ways() -> None:
    big = np.zeros((3000, 4000, 3), np.uint8)
    small = np.zeros((120, 90, 3), np.uint8)
    assert measures.working_copy(big, 640).shape == (480, 640, 3)
    assert measures.working_copy(small, 640).shape == (640, 480, 3)


def test_brightness_rises_with_exposure() -> None:
    image = textured_skin()
    values = [
        measures.brightness(measures.luma((image * gain).clip(0, 255).astype(np.uint8)), all_true(image))
        for gain in (0.25, 0.5, 1.0, 1.2)
    ]
    assert values == sorted(values) and values[0] < values[-1] / 3


def test_clipped_fraction_rises_with_overexposure() -> None:
    image = textured_skin()
    values = []
    for gain in (1.0, 1.2, 1.4, 2.0):
        brighter = (image.astype(np.float32) * gain).clip(0, 255).astype(np.uint8)
        values.append(measures.clipped_fraction(measures.clipped_mask(brighter), all_true(image)))
    assert values == sorted(values) and values[0] == 0.0 and values[-1] > 0.9


def test_sharpness_falls_with_blur() -> None:
    image = textured_skin()
    values = []
    for sigma in (0.0, 1.0, 2.0, 4.0):
        blurred = cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image
        values.append(measures.sharpness(measures.luma(blurred), all_true(image)))
    assert values == sorted(values, reverse=True) and values[-1] < values[0] / 4


def test_sharpness_ignores_exposure() -> None:
    image = textured_skin()
    darker = (image.astype(np.float32) * 0.5).astype(np.uint8)
    sharp = measures.sharpness(measures.luma(image), all_true(image))
    assert measures.sharpness(measures.luma(darker), all_true(image)) == pytest.approx(sharp, rel=0.15)


def test_working_copy_aliases_fine_texture_no_more_than_area_averaging() -> None:
    """A 1 px checkerboard (all its energy at the finest scale) reduced to 640 px: what is left of it is a beat
    pattern that would read as texture. The working copy leaves no more than INTER_AREA alone (the reference, ~10x
    slower under 2x); a plain linear reduction, which skips pixels, leaves a strong one."""
    for width in (700, 900, 1008, 1100, 1280, 1500, 2016, 2560, 4000):
        height = width * 3 // 4
        rows, cols = np.mgrid[0:height, 0:width]
        board = np.repeat((((rows + cols) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
        work = measures.working_copy(board, 640)
        size = (work.shape[1], work.shape[0])
        area = cv2.resize(board, size, interpolation=cv2.INTER_AREA)
        assert work.std() <= area.std() + 1.5, (width, work.std(), area.std())
        if width == 1008:
            assert cv2.resize(board, size, interpolation=cv2.INTER_LINEAR).std() > 30.0


def test_working_copy_from_two_to_four_times_is_area_averaging_by_another_path() -> None:
    """From 2-4x (a 12 MP photo decoded at 1/2) the copy is an exact halving and then the 1-2x path, not INTER_AREA
    at the odd ratio (~4x slower): the pixels stay what area averaging gives, to a level or two, odd sizes too (skipping pixels: ~4)."""
    photo = textured_skin(960, 1280)
    for width, height in ((1300, 975), (2016, 1512), (2017, 1513), (2559, 1919)):
        enlarged = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
        work = measures.working_copy(enlarged, 640)
        area = cv2.resize(enlarged, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_AREA)
        assert work.shape[1] == 640 and abs(work.shape[0] - round(height * 640 / width)) <= 1
        difference = np.abs(work.astype(np.int16) - area.astype(np.int16))
        assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 8, (width, difference.mean())


def test_working_copy_of_an_enlarged_photo_keeps_its_sharpness() -> None:
    """A 640 px photo enlarged 1.5-1.9x (as a phone photo decoded at 1/2 or 1/4 reaches the gate) reads at least as
    sharp on the working copy as INTER_AREA alone would leave it: the enlargement to twice the target must not
    soften it further (a linear one would), or sharp phone photos drift toward `blurry`."""
    photo = textured_skin()
    reference = measures.sharpness(measures.luma(photo), all_true(photo))
    for factor in (1.5, 1.575, 1.9):
        size = (round(640 * factor), round(480 * factor))
        enlarged = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
        work = measures.working_copy(enlarged, 640)
        area = cv2.resize(enlarged, (640, 480), interpolation=cv2.INTER_AREA)
        kept = measures.sharpness(measures.luma(work), all_true(work))
        assert kept >= measures.sharpness(measures.luma(area), all_true(area)), factor
        assert kept < reference  # what an enlargement takes away does not come back


def test_sharpness_is_scale_aware_on_the_working_copy() -> None:
    """The same scene at 1280, 2560 and 4000 px wide scores alike once on the working copy."""
    scene = cv2.resize(textured_skin(1200, 1600), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    scores = []
    for width in (1280, 2560, 4000):
        photo = cv2.resize(scene, (width, width * 3 // 4), interpolation=cv2.INTER_AREA)
        work = measures.working_copy(photo, 640)
        scores.append(measures.sharpness(measures.luma(work), all_true(work)))
    assert max(scores) < 1.2 * min(scores), scores


def test_uniformity_falls_with_a_stronger_gradient() -> None:
    image = textured_skin()
    values = []
    for low in (1.0, 0.7, 0.4, 0.2):
        ramp = np.linspace(low, 1.0, image.shape[1], dtype=np.float32)[None, :, None]
        lit = (image * ramp).astype(np.uint8)
        values.append(measures.uniformity(measures.luma(lit), all_true(lit), sigma=40))
    assert values == sorted(values, reverse=True) and values[0] > 0.9 and values[-1] < 0.35


def test_skin_mask_finds_skin_but_not_green_or_blue() -> None:
    image = textured_skin()
    assert skin_mask(image, 0.05).mean() > 0.9
    for colour in ((60, 170, 80), (50, 90, 200)):
        other = np.clip(image.astype(np.int16) - image.mean((0, 1)).astype(np.int16) + colour, 0, 255)
        assert skin_mask(other.astype(np.uint8), 0.05).mean() < 0.02


def test_skin_mask_survives_underexposure() -> None:
    dark = (textured_skin().astype(np.float32) * 0.3).astype(np.uint8)
    assert skin_mask(dark, 0.05).mean() > 0.8


def test_subject_mask_keeps_blown_out_skin_next_to_skin_only() -> None:
    skin = np.zeros((100, 100), bool)
    skin[:, :40] = True
    clipped = np.zeros_like(skin)
    clipped[:, 40:50] = True  # blown-out patch touching the skin
    clipped[:, 90:] = True  # bright window far away
    subject = measures.subject_mask(skin, clipped, reach=15)
    assert subject[:, 40:50].all() and not subject[:, 90:].any()


def test_empty_masks_do_not_crash() -> None:
    y = np.zeros((1, 1), np.float32)
    empty = np.zeros((1, 1), bool)
    assert measures.brightness(y, empty) == 0.0
    assert measures.clipped_fraction(empty, empty) == 0.0
    assert measures.uniformity(y, empty, 5.0) == 1.0
    assert measures.sharpness(y, empty) == 0.0
