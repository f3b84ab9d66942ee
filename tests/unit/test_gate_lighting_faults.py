"""The lighting faults the gate is judged on land where they are meant to (bench/gate_data.py): a fault placed on the
lesions' box darkens that box and leaves the frame beyond it alone, so a labelled fault is on the skin that matters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import gate_data as gd


def write_labels(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_lesion_box_widens_a_single_lesion_and_stays_in_the_frame(tmp_path: Path) -> None:
    box = gd.lesion_box(write_labels(tmp_path / "one.txt", ["0 0.95 0.5 0.02 0.02"]))
    assert box is not None
    x0, y0, x1, y1 = box
    assert x1 == pytest.approx(1.0) and x1 - x0 == pytest.approx(gd.LESION_BOX_MIN)  # moved inside, not cut
    assert y1 - y0 == pytest.approx(gd.LESION_BOX_MIN) and 0.0 <= y0 < 0.5 < y1 <= 1.0


def test_lesion_box_spans_every_lesion_with_a_margin(tmp_path: Path) -> None:
    box = gd.lesion_box(write_labels(tmp_path / "two.txt", ["0 0.2 0.2 0.1 0.1", "2 0.8 0.85 0.1 0.1"]))
    assert box == pytest.approx((0.15 - gd.LESION_BOX_MARGIN, 0.15 - gd.LESION_BOX_MARGIN, 0.85 + 0.05, 0.9 + 0.05))


def test_no_label_no_box(tmp_path: Path) -> None:
    assert gd.lesion_box(tmp_path / "missing.txt") is None
    assert gd.lesion_box(write_labels(tmp_path / "blank.txt", ["  "])) is None


def test_a_shadow_placed_on_the_box_falls_on_the_box() -> None:
    image = np.full((200, 200, 3), 180, np.uint8)
    box = (0.5, 0.0, 1.0, 1.0)  # the right half
    shadowed = gd.cast_shadow(3.0, angle=0.0, cover=0.5, soft=0.05, box=box)(image).astype(float)
    on_frame = gd.cast_shadow(3.0, angle=0.0, cover=0.5, soft=0.05)(image).astype(float)
    dark = float(gd.exposure(-3.0)(image)[0, 0, 0])  # 3 stops down in linear light
    assert np.all(shadowed[:, :145] == dark) and np.all(shadowed[:, 155:] == 180)  # up to the box's middle
    assert np.all(on_frame[:, :95] == dark) and np.all(on_frame[:, 105:] == 180)  # up to the frame's middle


def test_side_light_across_the_box_is_flat_beyond_it() -> None:
    image = np.full((100, 200, 3), 180, np.uint8)
    lit = gd.side_light(4.0, angle=0.0, box=(0.25, 0.0, 0.75, 1.0))(image).astype(float)
    assert lit[:, :45].std() == 0 and lit[:, 155:].std() == 0  # flat outside the box
    assert lit[:, 155:].mean() == 180 and lit[:, :45].mean() < lit[:, 100].mean() < 180


def test_the_grid_side_light_falls_off_in_the_direction_it_records() -> None:
    """`degrade` and `grid_direction` agree: the side light of photo k falls off toward the side its recorded
    direction names (0: darker on the left; 90: darker at the top), and faults without a direction record none."""
    from bench.gate_measure import SIDE_ANGLES, degrade, grid_direction

    image = np.full((120, 160, 3), 180, np.uint8)
    for index in range(len(SIDE_ANGLES)):
        direction = grid_direction("side light 4 stops", index)
        assert direction == grid_direction("lesion side light 4 stops", index) == SIDE_ANGLES[index]
        lit = degrade("side light 4 stops", image, index).astype(float).mean(axis=2)
        rad = np.radians(direction)
        dark_corner = (round(60 - 59 * np.sin(rad)), round(80 - 79 * np.cos(rad)))  # toward -(cos, sin) from centre
        light_corner = (round(60 + 59 * np.sin(rad)), round(80 + 79 * np.cos(rad)))
        assert lit[dark_corner] < lit[light_corner] - 50, direction
    assert grid_direction("gaussian blur s=2", 0) is None and grid_direction("good", 3) is None


def test_catches_per_direction_read_the_stored_direction_and_count_by_part(tmp_path: Path) -> None:
    from bench.calibrate_quality_gate import direction_plot, direction_table
    from quality_gate.policy import QualityReport

    def row(part: str, direction: float) -> dict:
        return {"set": "valid", "part": part, "kind": "side light 4 stops", "label": "uneven_lighting",
                "photo": "p.jpg", "direction": direction}  # fmt: skip

    rows = [row("selection", 45.0), row("selection", 45.0), row("report", 45.0), row("selection", 0.0)]
    caught, missed = QualityReport(False, ["uneven_lighting"]), QualityReport(False, ["too_dark"])
    table = direction_table(rows, [caught, missed, caught, caught])
    assert table[1:] == [["side light 4 stops", "0", "1/0/0", "100.0", "-", "-"],
                         ["side light 4 stops", "45", "2/1/0", "50.0", "100.0", "-"]]  # fmt: skip
    plot = direction_plot(rows, [caught, missed, caught, caught], tmp_path / "directions.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_hint_table_counts_refused_faults_told_to_fix_another_kind_of_thing() -> None:
    from bench.calibrate_quality_gate import hint_table
    from quality_gate.policy import QualityReport

    def row(part: str) -> dict:
        return {
            "set": "valid",
            "part": part,
            "kind": "cast shadow 4 stops",
            "label": "uneven_lighting",
            "photo": "p.jpg",
        }

    rows = [row("selection"), row("selection"), row("selection"), row("report")]
    reports = [
        QualityReport(False, ["uneven_lighting", "motion_blur"]),  # told to hold still too: the wrong way
        QualityReport(False, ["uneven_lighting"]),
        QualityReport(True, []),  # accepted: not counted
        QualityReport(False, ["uneven_lighting", "not_skin_photo"]),  # a content code is no instruction to fix light
    ]
    assert hint_table(rows, reports)[1:] == [["cast shadow 4 stops", "2/1/0", "50.0", "0.0", "-"]]


@pytest.mark.parametrize("shape", [(1,), (7, 3), (128, 128, 3), (480, 640, 3)])
def test_linear_light_of_codes_is_the_arithmetic_bit_for_bit(shape: tuple[int, ...]) -> None:
    codes = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    for image in (codes, codes[::-1]):  # a view too
        looked_up, computed = gd.srgb_to_linear(image), gd._to_linear(image)
        assert looked_up.dtype == computed.dtype == np.float32 and np.array_equal(looked_up, computed)
    floats = codes.astype(np.float32) + 0.25  # not codes: computed as before
    assert np.array_equal(gd.srgb_to_linear(floats), gd._to_linear(floats))
