"""The capture changes the gate is fitted and judged on as fine (`bench/gate_data.py`): each does what it says."""

from __future__ import annotations

import numpy as np

from bench import gate_data as gd
from bench.gate_measure import capture_copies


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.full((120, 160, 3), (190, 140, 120), np.int16) + rng.integers(-20, 21, (120, 160, 1))
    return np.clip(base, 0, 255).astype(np.uint8)


def test_white_balance_moves_red_against_blue_and_keeps_grey_luma() -> None:
    grey = np.full((8, 8, 3), 118, np.uint8)
    warm = gd.white_balance(1.3, 0.7)(grey).astype(int)
    cool = gd.white_balance(0.8, 1.3)(grey).astype(int)
    assert warm[0, 0, 0] > 118 > warm[0, 0, 2]
    assert cool[0, 0, 2] > 118 > cool[0, 0, 0]
    luma = float(gd.srgb_to_linear(warm[:1, :1].astype(np.uint8))[0, 0] @ [0.2126, 0.7152, 0.0722])
    assert abs(luma - float(gd.srgb_to_linear(grey[:1, :1])[0, 0, 0])) < 0.005  # exposure kept


def test_tone_curve_lifts_the_shadows_and_keeps_black_and_white() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (2, 1, 3))
    lifted = gd.shadow_lift(0.25)(ramp).astype(int)
    assert lifted[0, 0, 0] == 0 and lifted[0, 255, 0] == 255
    assert lifted[0, 64, 0] > 64 + 20  # the dark tones rise most
    assert np.all(np.diff(lifted[0, :, 0]) >= 0)  # a tone curve keeps the order of tones


def test_aspect_crop_keeps_the_centre_at_the_photo_short_side() -> None:
    photo = _photo()
    portrait = gd.aspect_crop(3 / 4)(photo)
    assert min(portrait.shape[:2]) == min(photo.shape[:2])
    assert abs(portrait.shape[1] / portrait.shape[0] - 3 / 4) < 0.02


def test_vignette_darkens_the_corners_by_its_stops_and_keeps_the_centre() -> None:
    grey = np.full((41, 61, 3), 150, np.uint8)
    dark = gd.vignette(0.5)(grey)
    linear = gd.srgb_to_linear(dark)[..., 1] / gd.srgb_to_linear(grey)[..., 1]
    assert abs(float(np.log2(linear[20, 30]))) < 0.01  # the centre keeps its light
    assert abs(float(np.log2(linear[0, 0])) + 0.5) < 0.02  # a corner half a stop down (to the uint8 step)
    assert linear[20, 0] > linear[0, 0] and linear[0, 30] > linear[0, 0]  # the edges' middles in between


def test_sharpen_adds_contrast_at_an_edge() -> None:
    edge = np.zeros((20, 20, 3), np.uint8)
    edge[:, 10:] = 200
    edge[:, :10] = 50
    sharp = gd.sharpen(0.8)(edge).astype(int)
    assert sharp[5, 10, 0] > 200 and sharp[5, 9, 0] < 50


def test_capture_copies_are_two_fine_rows() -> None:
    rng = np.random.default_rng(3)
    copies = [copy for _ in range(8) for copy in capture_copies(_photo(), rng)]
    assert all(label is None for _, label, _ in copies)
    kinds = {kind.split()[1] for kind, _, _ in copies}
    assert "white" in kinds and len(kinds) >= 3  # white balance every time, and several of the other changes


def test_capture_bench_says_which_part_of_the_gate_refused_uneven_light() -> None:
    """A shadow only the network sees is `[network]`; with the network off, neither learned part raises it."""
    from bench.gate_capture import lighting_source, verdict_label
    from quality_gate import Thresholds, assess
    from tests.conftest import skin_photo

    skin = skin_photo(640, 480, seed=1)
    assert verdict_label(assess(skin)) == "accepted"
    shadowed = assess(gd.cast_shadow(4.0, 90.0, cover=0.45, soft=0.1)(skin))
    assert lighting_source(shadowed) == "network"
    assert "uneven_lighting[network]" in verdict_label(shadowed)
    assert lighting_source(shadowed, Thresholds(max_lighting_logit=float("inf"))) == "floor"


def test_display_p3_keeps_greys_and_dulls_colours_read_as_srgb() -> None:
    """P3 shares sRGB's white, so a grey keeps its values; a skin or lesion red, written on wider primaries, reads
    less saturated as sRGB (what a service blind to the profile would see)."""
    np.testing.assert_allclose(gd.display_p3_from_srgb().sum(axis=1), 1.0, atol=1e-6)
    grey = np.full((4, 4, 3), 128, np.uint8)
    assert np.abs(gd.as_display_p3(grey).astype(int) - 128).max() <= 1
    red = np.full((4, 4, 3), (200, 60, 60), np.uint8)
    p3 = gd.as_display_p3(red).astype(int)[0, 0]
    assert p3[0] < 200 and p3[1] > 60 + 10  # red minus green shrinks
