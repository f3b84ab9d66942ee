"""A uniform frame around the photo (a screenshot in a phone's viewer, a letterboxed copy) is not the scene: the gate
trims it (`quality_gate.borders`) and judges what is inside, and leaves a photo without one exactly as it was."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench import gate_data as gd
from quality_gate import Thresholds, assess
from quality_gate.borders import content_box
from tests.unit.test_quality_policy import textured_skin


def _jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def screenshot(photo: np.ndarray, colour: int) -> np.ndarray:
    """`photo` in a portrait phone screen's frame (`gate_data.screenshot`, the bench's copy)."""
    return gd.screenshot(colour)(photo)


@pytest.fixture(scope="module")
def skin() -> np.ndarray:
    return textured_skin(480, 640, seed=5)


@pytest.mark.parametrize("colour", [0, 255])  # a dark viewer, a light one
def test_the_frame_of_a_screenshot_is_found(skin: np.ndarray, colour: int) -> None:
    shot = _jpeg(screenshot(skin, colour))
    box = content_box(shot)
    assert box is not None
    x0, y0, x1, y1 = box
    assert (x0, x1) == (0, 640) and shot.shape[:2] == (1385, 640)
    top = (1385 - 480) // 2
    # the frame's edge, and the JPEG blocks it rings into past it, cut: at most 1% of the side and a block more
    assert top <= y0 <= top + 24 and top + 480 - 24 <= y1 <= top + 480


def test_a_status_bar_goes_with_the_frame(skin: np.ndarray) -> None:
    shot = screenshot(skin, 0)
    cv2.putText(shot, "9:41", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    cv2.rectangle(shot, (560, 20), (620, 40), (255, 255, 255), -1)  # the battery
    box = content_box(_jpeg(shot))
    assert box is not None and (1385 - 480) // 2 <= box[1] <= (1385 - 480) // 2 + 24


def test_a_photo_without_a_frame_is_left_alone(skin: np.ndarray) -> None:
    assert content_box(skin) is None
    assert content_box(_jpeg(skin)) is None


def test_a_deep_shadow_along_one_side_is_no_frame(skin: np.ndarray) -> None:
    """A shadow 6 stops deep keeps the skin's texture: never one flat colour, so the gate still sees it."""
    shadowed = gd.cast_shadow(6.0, 0.0, 0.4, 0.05)(skin)
    assert content_box(_jpeg(shadowed)) is None


def test_two_flat_colours_are_no_frame(skin: np.ndarray) -> None:
    framed = screenshot(skin, 0)
    framed[: framed.shape[0] // 4] = 255  # white above, black below: the picture's own edges, not one frame
    assert content_box(framed) is None


def test_an_almost_empty_frame_is_judged_whole() -> None:
    flat = np.full((400, 400, 3), 30, np.uint8)
    flat[195:205, 195:205] = 200  # a speck: no photo inside to judge
    assert content_box(flat) is None


@pytest.mark.parametrize("colour", [0, 255])
def test_the_gate_judges_the_photo_inside_a_screenshot(skin: np.ndarray, colour: int) -> None:
    assert assess(skin).accepted
    shot = _jpeg(screenshot(skin, colour))
    report = assess(shot)
    assert report.accepted, report.retake_codes
    assert report.measures["content_height"] < 0.4 and report.measures["content_width"] == 1.0
    # what the frame does to the measures when left in: most of the frame is no skin, and its straight edges read
    # as a direction of least detail on the half-size copy (the full-size ratio, which the motion_blur model also
    # reads since 2026-11-29, sees the photo's own texture and no smear)
    framed = assess(shot, Thresholds(trim_borders=False)).measures
    assert framed["skin_fraction"] < 0.5 * report.measures["skin_fraction"]
    assert framed["motion_ratio"] < 0.6 and report.measures["motion_ratio"] > 0.9


def test_resolution_is_judged_on_the_photo_inside(skin: np.ndarray) -> None:
    """A small photo in a large frame is a small photo: low_resolution, as it would be alone."""
    small = cv2.resize(skin, (320, 240), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((1386, 640, 3), np.uint8)
    canvas[573:813, 160:480] = small
    report = assess(canvas)
    assert 240 - 2 * 14 <= report.measures["short_side"] <= 240
    assert "low_resolution" in report.retake_codes
    reduced = assess(cv2.resize(canvas, (320, 693), interpolation=cv2.INTER_AREA), photo_size=(640, 1386))
    assert abs(reduced.measures["short_side"] - report.measures["short_side"]) <= 4  # scaled back to the photo's pixels


def test_a_black_band_on_one_side_is_a_shadow_not_a_frame(skin: np.ndarray) -> None:
    """A fault can blacken one side as black as a frame (deep side light, a dark room); a viewer centres the photo."""
    off_centre = np.zeros((1385, 640, 3), np.uint8)
    off_centre[-480:] = skin  # all the black above the photo
    assert content_box(off_centre) is None
    assert content_box(screenshot(skin, 0)) is not None  # the same photo centred: a frame


def test_a_narrow_frame_is_left_to_the_gate(skin: np.ndarray) -> None:
    """Bands that leave the photo most of the picture are left alone: lighting faults make such bands too."""
    letterboxed = np.zeros((560, 640, 3), np.uint8)
    letterboxed[40:520] = skin  # the photo keeps 86% of the picture
    assert content_box(letterboxed) is None
