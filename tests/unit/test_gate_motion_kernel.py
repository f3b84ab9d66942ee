"""The motion blur the gate is judged on is as long as its name says in every direction (bench/gate_data.py): a
"12 px" smear drawn with whole-pixel endpoints was 13 px long at 0 and 90 degrees and ~10 px at 15, 75, 105 and 165,
so the grid's catch per direction measured the rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import gate_data as gd
from bench import gate_measure
from bench.motion_angles import by_photo, misses_by_photo, plot, rounded_kernel


def extent(kernel: np.ndarray, angle: float) -> tuple[float, float, float]:
    """(length along `angle`, width across it, centre offset along it) in px: sqrt(12 x variance), as of a box."""
    size = kernel.shape[0]
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    along, across = cols * c + rows * s, rows * c - cols * s
    centre = float((kernel * along).sum())
    length = float(np.sqrt(12 * (kernel * (along - centre) ** 2).sum()))
    return length, float(np.sqrt(12 * (kernel * across**2).sum())), centre


@pytest.mark.parametrize("length", [12, 25])
def test_a_smear_is_its_length_long_in_every_direction(length: int) -> None:
    box = np.sqrt(length**2 - 1)  # a row of `length` equal pixels
    for angle in np.arange(0.0, 180.0, 7.5):
        kernel = gd.motion_kernel(length, float(angle))
        along, across, centre = extent(kernel, float(angle))
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert along == pytest.approx(box, abs=0.4), angle
        assert across < 1.7 and abs(centre) < 1e-3, angle
        assert np.allclose(kernel, kernel[::-1, ::-1], atol=1e-7)  # a smear has no sign


def test_whole_pixel_drawing_shows_the_spread_the_exact_one_removes() -> None:
    """The drawing before 2026-11-29 (`motion_angles.rounded_kernel`) is what varied: proof the test above can fail."""
    lengths = [extent(rounded_kernel(12, a), a)[0] for a in (0.0, 15.0, 75.0, 105.0)]
    assert lengths[0] == pytest.approx(12.96, abs=0.01) and lengths[2] == pytest.approx(11.20, abs=0.01)
    assert max(lengths) - min(lengths) > 1.5


def test_angle_bench_pools_each_photo_over_its_angles() -> None:
    """A photo's smears are one cluster for the interval, whatever the angle."""
    caught = {0.0: {"a": [True], "b": [False]}, 90.0: {"a": [True], "b": [True]}}
    assert by_photo(caught) == {"a": [True, True], "b": [False, True]}


def test_angle_bench_counts_misses_per_photo_most_first() -> None:
    photos = {"a": [True] * 12, "b": [False, True, False], "c": [False, True], "d": [False, False, False]}
    assert misses_by_photo(photos) == [3, 2, 1]


def test_the_grid_turns_motion_blur_through_every_15_degrees() -> None:
    angles = {gate_measure.grid_direction("motion blur 12 px", index) for index in range(24)}
    assert angles == {15.0 * k for k in range(12)}


def test_angle_bench_draws_a_line_per_length(tmp_path: Path) -> None:
    caught = {
        12: {0.0: {"a": [True], "b": [False]}, 90.0: {"a": [True], "b": [True]}},
        14: {0.0: {"a": [True], "b": [True]}, 90.0: {"a": [True], "b": [True]}},
    }
    plot(caught, "report", tmp_path / "lengths.png")
    assert (tmp_path / "lengths.png").stat().st_size > 10_000
