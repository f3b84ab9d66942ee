"""The helpers of `bench/motion_ratio_study.py` (rule M1's evidence): an AUC for "lower reads as smeared", and shares
below a reference's quantile."""

from __future__ import annotations

import numpy as np
import pytest

from bench.motion_ratio_study import auc_lower, share_below


def test_auc_is_one_when_every_positive_reads_lower_and_half_for_ties() -> None:
    assert auc_lower(np.array([0.1, 0.2]), np.array([0.5, 0.9])) == 1.0
    assert auc_lower(np.array([0.9]), np.array([0.1, 0.2])) == 0.0
    assert auc_lower(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert auc_lower(np.array([0.1, 0.6]), np.array([0.5])) == pytest.approx(0.5)


def test_share_below_a_quantile_of_the_reference() -> None:
    reference = np.arange(100, dtype=float)
    assert share_below(np.array([-1.0, 0.5, 50.0, 99.0]), reference, 0.01) == pytest.approx(0.5)  # below 0.99
    assert share_below(np.array([1.0, 2.0, 3.0, 10.0]), reference, 0.05) == pytest.approx(0.75)  # below 4.95
