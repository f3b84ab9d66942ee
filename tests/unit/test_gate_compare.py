"""`bench/gate_compare.py`: two gates on the same rows, paired by photo (measures of generated images, no cache)."""

from __future__ import annotations

import pytest

from bench import gate_compare as gc
from quality_gate.policy import Thresholds, image_measures
from tests.conftest import skin_photo


def _pair(photo: str, base: bool, other: bool) -> gc.Pair:
    return gc.Pair(photo, "good", True, base, other, [], [])


def test_the_difference_counts_rows_and_resamples_photos() -> None:
    # photo a: both its rows flagged by the other gate only; photo b: flagged by neither
    group = [_pair("a", False, True), _pair("a", False, True), _pair("b", False, False), _pair("b", False, False)]
    difference, low, high = gc.paired_difference(group)
    assert difference == pytest.approx(50.0)
    assert 0.0 <= low < difference < high <= 100.0  # a draw of a alone gives 100, of b alone 0
    every = [_pair(str(k), False, True) for k in range(5)]
    assert gc.paired_difference(every) == (100.0, 100.0, 100.0)


def test_a_gate_that_refuses_everything_differs_on_every_good_row_and_catches_every_small_photo() -> None:
    measures = [image_measures(skin_photo(seed=seed), Thresholds()) for seed in range(3)]
    rows = [{"photo": f"p{k}", "kind": "good", "label": None, "measures": m} for k, m in enumerate(measures)]
    rows += [
        {"photo": f"p{k}", "kind": "small", "label": "low_resolution", "measures": m} for k, m in enumerate(measures)
    ]
    base = gc.gate(None, None, None)
    strict = gc.gate(None, None, '{"min_short_side": 100000}')

    compared = gc.pairs(rows, base, strict)

    good = [p for p in compared if p.good]
    assert [p.base for p in good] == [False] * 3  # generated skin passes the shipped gate
    assert all(p.other and p.other_codes == ["low_resolution"] for p in compared)
    lines = gc.table(compared)
    assert any(
        line.startswith("good rows and copies (refused)") and "+100.0 [+100.0, +100.0]" in line for line in lines
    )
    assert any(line.startswith("small") and " 0.0    100.0" in line for line in lines)
    # a held-back non-skin image counts as refused on any code, not only as not_skin_photo
    image = [{"set": "nonskin", "photo": "x", "kind": "scan", "label": "not_skin_photo", "measures": measures[0]}]
    assert gc.pairs(image, base, strict)[0].other
