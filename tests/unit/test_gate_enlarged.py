"""`bench/gate_enlarged.py`'s phone-size path and its count of caught faults (issue 12: the gate judged on degraded
photos as a phone sends them)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gate_enlarged import BAR_FAULTS, as_sent, fault_hit
from bench.gate_measure import VALID_GRID
from quality_gate import QualityReport


def test_as_sent_enlarges_stores_and_decodes_as_the_service_does() -> None:
    rng = np.random.default_rng(0)
    rgb = (96 + rng.integers(0, 64, (60, 80, 3))).astype(np.uint8)
    pixels, size = as_sent(rgb, 3.0, 240)
    assert size == (240, 180)  # the stored photo's size, for photo_size
    assert pixels.shape == (180, 240, 3)  # no longer than asked: decoded whole
    small, size = as_sent(rgb, 3.0, 100)
    assert size == (240, 180) and small.shape == (90, 120, 3)  # JPEG decoded at 1/2, the smallest >= 100 px long
    assert abs(float(small.mean()) - float(rgb.mean())) < 2.0  # the same photo, not a black or shifted frame


def test_fault_hit_counts_a_fault_caught_with_its_code_and_a_good_photo_refused() -> None:
    accepted = QualityReport(accepted=True)
    dark = QualityReport(accepted=False, retake_codes=["too_dark"])
    blurry = QualityReport(accepted=False, retake_codes=["blurry"])
    assert fault_hit("darker 2 stops", dark) and not fault_hit("darker 2 stops", blurry)
    assert fault_hit("motion blur 12 px", blurry)  # as calibrate counts a smear: blurry or motion_blur
    assert fault_hit("good", dark) and not fault_hit("good", accepted)


@pytest.mark.parametrize("fault", BAR_FAULTS)
def test_every_bar_fault_is_a_grid_row(fault: str) -> None:
    assert fault in VALID_GRID
