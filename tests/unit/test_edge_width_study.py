"""The edge-width focus measure tried for issue 12 (`bench/edge_width_study.py`) reads blur, not contrast or noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench import edge_width_study as study
from quality_gate import measures
from tests.unit.test_quality_measures import textured_skin


def test_edge_width_grows_with_blur_whatever_the_contrast_and_survives_noise_added_after() -> None:
    image = measures.luma(textured_skin())
    mask = np.ones(image.shape, bool)
    widths = [
        study.edge_width(cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image, mask) for sigma in (0, 1, 2, 3)
    ]
    assert widths == sorted(widths) and widths[2] > widths[0] + 1.0
    faint = (128 + (image.astype(np.float32) - 128) * 0.4).astype(np.uint8)  # the same edges at 40% contrast
    assert study.edge_width(faint, mask) == pytest.approx(widths[0], abs=0.3)
    # a phone's sensor noise after the blur: the Laplacian reads it as detail, the strongest edges stay wide
    rng = np.random.default_rng(1)
    noisy = (cv2.GaussianBlur(image, (0, 0), 2).astype(np.float32) + rng.normal(0, 3, image.shape)).clip(0, 255)
    noisy = noisy.astype(np.uint8)
    assert measures.sharpness(noisy, mask) > measures.sharpness(cv2.GaussianBlur(image, (0, 0), 2), mask) * 1.5
    assert study.edge_width(noisy, mask) > (widths[0] + widths[2]) / 2


def test_edge_width_of_a_face_without_edges_is_the_window() -> None:
    flat = np.full((64, 64), 120, np.uint8)
    assert study.edge_width(flat, np.ones(flat.shape, bool)) == float(study.EDGE_WINDOW)
    assert study.edge_width(flat, np.zeros(flat.shape, bool)) == 0.0


def test_the_study_judges_focus_on_the_gates_face_region() -> None:
    y, face = study.face_luma(textured_skin(), study.Thresholds())
    assert y.shape == face.shape == (480, 640) and face.mean() > 0.9  # a skin close-up: the face is the frame
    values = study.row_measures(cv2.GaussianBlur(textured_skin(), (0, 0), 2), study.Thresholds())
    assert values["edge_width"] > study.row_measures(textured_skin(), study.Thresholds())["edge_width"] + 1.0


def test_the_plot_draws_every_measure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    names = ("edge_width", "1 / sharpness")
    rows = {
        kind: [{n: float(rng.normal(3 + (kind in study.BLUR), 0.2)) for n in names} for _ in range(20)]
        for kind in study.GOOD + study.BLUR
    }
    study.plot(rows, tmp_path / "edge_width.png")
    assert (tmp_path / "edge_width.png").stat().st_size > 10_000
