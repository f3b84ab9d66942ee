"""The gate's edge-width focus measure (`measures.edge_width`, issue 12) reads blur, not contrast or noise; its check
refuses as `blurry`; and the study behind it (`bench/edge_width_study.py`) compares it on the gate's own values."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from bench import edge_width_study as study
from quality_gate import measures
from quality_gate.policy import Thresholds, assess, compute_measures, judge
from tests.unit.test_quality_measures import textured_skin


def test_edge_width_grows_with_blur_whatever_the_contrast_and_survives_noise_added_after() -> None:
    image = measures.luma(textured_skin())
    mask = np.ones(image.shape, bool)
    widths = [
        measures.edge_width(cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image, mask) for sigma in (0, 1, 2, 3)
    ]
    assert widths == sorted(widths) and widths[2] > widths[0] + 1.0
    faint = (128 + (image.astype(np.float32) - 128) * 0.4).astype(np.uint8)  # the same edges at 40% contrast
    assert measures.edge_width(faint, mask) == pytest.approx(widths[0], abs=0.3)
    # a phone's sensor noise after the blur: the Laplacian reads it as detail, the strongest edges stay wide
    rng = np.random.default_rng(1)
    noisy = (cv2.GaussianBlur(image, (0, 0), 2).astype(np.float32) + rng.normal(0, 3, image.shape)).clip(0, 255)
    noisy = noisy.astype(np.uint8)
    assert measures.sharpness(noisy, mask) > measures.sharpness(cv2.GaussianBlur(image, (0, 0), 2), mask) * 1.5
    assert measures.edge_width(noisy, mask) > (widths[0] + widths[2]) / 2


def test_edge_width_of_a_face_without_edges_is_the_window() -> None:
    flat = np.full((64, 64), 120, np.uint8)
    assert measures.edge_width(flat, np.ones(flat.shape, bool)) == float(measures.EDGE_WINDOW)
    assert measures.edge_width(flat, np.zeros(flat.shape, bool)) == 0.0


def test_the_check_refuses_wide_edges_as_blurry_and_only_with_skin() -> None:
    t = Thresholds(learned_verdict=False)  # the hand checks alone (the synthetic skin is no ACNE04 photo)
    values = compute_measures(textured_skin(), t)
    assert values["edge_width"] < t.max_edge_width and judge(values, t).accepted  # a sharp close-up passes
    wide = values | {"edge_width": t.max_edge_width + 0.5}
    report = judge(wide, t)
    assert report.retake_codes == ["blurry"] and report.margin == pytest.approx(0.5 / 1.0)
    assert judge(wide, dataclasses.replace(t, max_edge_width=math.inf)).accepted
    no_skin = wide | {"skin_fraction": 0.0}  # focus is not judged on a frame without skin
    assert "blurry" not in judge(no_skin, t).retake_codes


def test_assess_refuses_a_blurred_close_up_for_its_edges_alone() -> None:
    hand_only = Thresholds(learned_verdict=False, min_sharpness=0.0)  # no other focus check: the edges decide
    blurred = cv2.GaussianBlur(textured_skin(), (0, 0), 2)
    assert assess(blurred, hand_only).retake_codes == ["blurry"]
    assert assess(blurred, dataclasses.replace(hand_only, max_edge_width=math.inf)).accepted
    assert assess(textured_skin(), hand_only).accepted


def test_the_study_reads_the_gates_own_value() -> None:
    values = study.row_measures(cv2.GaussianBlur(textured_skin(), (0, 0), 2), Thresholds())
    assert values["edge_width"] > study.row_measures(textured_skin(), Thresholds())["edge_width"] + 1.0


def test_the_plot_draws_every_measure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    names = ("edge_width", "1 / sharpness")
    rows = {
        kind: [{n: float(rng.normal(3 + (kind in study.BLUR), 0.2)) for n in names} for _ in range(20)]
        for kind in study.GOOD + study.BLUR
    }
    study.plot(rows, tmp_path / "edge_width.png")
    assert (tmp_path / "edge_width.png").stat().st_size > 10_000
