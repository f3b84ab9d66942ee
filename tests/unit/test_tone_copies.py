"""Copies at other skin tones for the fairness check (`bench/gate_data.melanin_shift`, `bench/tone_fairness.py`): each
reaches the skin tone it is asked for, changes the skin alone, and colours it as its pigment says."""

from __future__ import annotations

import numpy as np
import pytest

from bench import gate_data as gd
from bench import tone_fairness as tf
from tests.conftest import skin_photo


def _chromaticity(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Mean linear-light r, g, b chromaticity of the pixels `where`."""
    linear = gd.srgb_to_linear(image)[where]
    return (linear / linear.sum(axis=1, keepdims=True)).mean(axis=0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Skin on the left, a blue wall on the right (the wall is no skin, so no copy may touch it)."""
    image = skin_photo(240, 160, seed=3)
    image[:, 160:] = (60, 90, 160)
    return image


@pytest.mark.parametrize("spectrum", [gd.NEUTRAL_DENSITY, gd.MELANIN_DENSITY])
@pytest.mark.parametrize("target", [-10.0, -40.0])
def test_copy_reaches_the_target_tone_and_leaves_the_wall(photo: np.ndarray, spectrum, target: float) -> None:
    own = gd.ita(photo)
    assert own > target + 20  # the synthetic skin is light: every target is a real change
    copy = gd.melanin_shift(target, spectrum)(photo)
    assert gd.ita(copy) == pytest.approx(target, abs=2.0)
    np.testing.assert_array_equal(copy[:, 200:], photo[:, 200:])  # 40 px from the skin: beyond the soft weight


def test_copies_go_only_beyond_the_photo_own_tone_and_within_reach(photo: np.ndarray) -> None:
    """A photo (ITA ~39) gets the darker targets and, by melanin, the very light one; neutral reaches very light only
    by blowing the skin out, so it makes none. Its dark copy gets no darker target it has already passed."""
    wanted = {"neutral ITA +19 (tan)", "neutral ITA -40 (dark)", "melanin ITA +60 (very light)"}
    wanted |= {"neutral ITA +60 (very light)"}
    assert set(tf.copies_of(photo, wanted)) == wanted - {"neutral ITA +60 (very light)"}
    dark = gd.melanin_shift(-40.0, gd.NEUTRAL_DENSITY)(photo)
    assert not {"neutral ITA +19 (tan)", "neutral ITA -40 (dark)"} & set(tf.copies_of(dark, wanted))


def test_neutral_keeps_the_skin_chromaticity_and_melanin_takes_blue_most(photo: np.ndarray) -> None:
    skin = np.zeros(photo.shape[:2], bool)
    skin[20:-20, 20:140] = True
    before = _chromaticity(photo, skin)
    neutral = _chromaticity(gd.melanin_shift(-40.0, gd.NEUTRAL_DENSITY)(photo), skin)
    melanin = _chromaticity(gd.melanin_shift(-40.0, gd.MELANIN_DENSITY)(photo), skin)
    np.testing.assert_allclose(neutral, before, atol=0.01)
    assert melanin[0] > before[0] + 0.05 and melanin[2] < before[2] - 0.03  # redder, much less blue


def test_metered_copy_gets_the_frame_light_back(photo: np.ndarray) -> None:
    def mean_light(image: np.ndarray) -> float:
        return float((gd.srgb_to_linear(image) @ gd.REC709_LUMA).mean())

    recorded = gd.melanin_shift(-40.0, gd.NEUTRAL_DENSITY)(photo)
    metered = gd.melanin_shift(-40.0, gd.NEUTRAL_DENSITY, metered=True)(photo)
    assert mean_light(recorded) < 0.7 * mean_light(photo)
    assert mean_light(metered) == pytest.approx(mean_light(photo), rel=0.03)


def test_summary_counts_refusals_and_codes_per_family() -> None:
    rows = [
        {"family": "as is", "refused": False, "verdict": "accepted", "L": 60.0, "a": 10.0, "b": 20.0, "ita": 27.0},
        {
            "family": "as is",
            "refused": True,
            "verdict": "refused too_dark",
            "L": 50.0,
            "a": 10.0,
            "b": 20.0,
            "ita": 0.0,
        },
        {
            "family": "tone L+8",
            "refused": True,
            "verdict": "refused blurry",
            "L": 70.0,
            "a": 9.0,
            "b": 18.0,
            "ita": 48.0,
        },
    ]
    table = tf.summary(rows)
    assert list(table) == ["as is", "tone L+8"]  # families without copies are left out
    assert table["as is"]["refused"] == 0.5 and table["as is"]["codes"] == {"too_dark": 1}
    assert table["as is"]["L"] == 55.0 and table["tone L+8"]["codes"] == {"blurry": 1}


def test_lighter_target_takes_pigment_away_and_metering_darkens_it(photo: np.ndarray) -> None:
    lighter = gd.melanin_shift(45.0, gd.MELANIN_DENSITY)(photo)
    assert gd.ita(lighter) == pytest.approx(45.0, abs=2.0)
    metered = gd.melanin_shift(45.0, gd.MELANIN_DENSITY, metered=True)(photo)
    assert metered[:, :140].mean() < lighter[:, :140].mean()  # the camera answers lighter skin with less exposure


def test_a_target_out_of_the_pigment_reach_makes_no_copy(photo: np.ndarray) -> None:
    """Lighter skin with its chromaticity kept grows yellower as it lightens: neutral cannot reach very light."""
    with pytest.raises(ValueError, match="out of this pigment's reach"):
        gd.melanin_shift(75.0, gd.NEUTRAL_DENSITY)(photo)
    assert "neutral ITA +75 (very light)" not in tf.copies_of(photo, {"neutral ITA +75 (very light)"})


def test_pigment_copies_are_fine_rows_one_recorded_one_metered(photo: np.ndarray) -> None:
    from bench.gate_measure import pigment_copies

    copies = pigment_copies(photo, np.random.default_rng(0))
    assert [label for _, label, _ in copies] == [None] * len(copies)  # fine: no code should be raised
    names = [name for name, _, _ in copies]
    assert 1 <= len(copies) <= 2 and all(name.startswith("pigment ITA") for name in names)
    assert sum(name.endswith(", metered") for name in names) <= 1
    assert all(not np.array_equal(copy, photo) for _, _, copy in copies)


def test_plot_draws_the_families_every_part_has(tmp_path) -> None:
    row = {"refused": 0.01, "codes": {}, "L": 55.0, "a": 10.0, "b": 20.0, "ita": 12.0, "copies": 3}
    tables = {"selection": {"as is": row, "tone L+8": row}, "report": {"as is": row}}
    tf.plot(tables, tmp_path / "tone.png")
    assert (tmp_path / "tone.png").stat().st_size > 10_000


def test_the_pooled_table_gives_each_family_its_share_over_report_and_holdout_with_an_interval() -> None:
    from bench.intervals import wilson

    dark = tf.families()[-1]
    rows = {
        "report": [{"photo": f"r{i}", "family": dark, "refused": i < 2} for i in range(50)],
        "holdout": [{"photo": f"h{i}", "family": dark, "refused": i < 3} for i in range(150)],
        "selection": [{"photo": f"s{i}", "family": dark, "refused": True} for i in range(50)],  # not pooled
    }
    low, high = wilson(5, 200)
    assert tf.pooled_table(rows)[1:] == [f"{dark:52s}  200  2.5 [{100 * low:.1f}-{100 * high:.1f}]"]


def test_cached_verdicts_are_keyed_on_the_gate_that_made_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """tone_fairness reuses rows judged on an earlier run only under the same `gate_fingerprint`: a gate with other
    thresholds (or code, models) must not read the old gate's verdicts as its own."""
    import functools

    from quality_gate import policy

    shipped = gd.gate_fingerprint()
    assert shipped == gd.gate_fingerprint()
    monkeypatch.setattr(policy, "Thresholds", functools.partial(policy.Thresholds, lighting_sure_even=-9.0))
    assert gd.gate_fingerprint() != shipped
