"""The orientation bench judges every image under every turn, and each turn is the one it names."""

from __future__ import annotations

import numpy as np

from bench import gate_orientation as bench
from quality_gate import assess
from tests.conftest import skin_photo


def test_each_turn_is_what_it_names() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(bench.TURNS["as is"](image), image)
    assert np.array_equal(bench.TURNS["mirrored"](image), image[:, ::-1])
    assert bench.TURNS["turned a quarter"](image).shape == (3, 2, 3)
    assert np.array_equal(bench.TURNS["upside down"](image), image[::-1, ::-1])


def test_every_image_is_judged_under_every_turn_as_the_gate_judges_it() -> None:
    photo, dark = skin_photo(640, 480, seed=3), (skin_photo(640, 480, seed=4) * 0.1).astype(np.uint8)
    accepted = bench.judge_turns([("photo", photo), ("dark", dark)])
    assert set(accepted) == set(bench.TURNS)
    for turn, change in bench.TURNS.items():
        assert accepted[turn] == {"photo": assess(change(photo)).accepted, "dark": assess(change(dark)).accepted}
    assert not any(verdicts["dark"] for verdicts in accepted.values())  # far too dark whichever way it is turned
