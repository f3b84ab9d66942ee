"""bench/lighting_reach.py: how much of the labelled lesions a grid lighting fault darkens, and the catch split by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import lighting_reach as lr
from quality_gate.policy import QualityReport


def labels(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_darkening_reads_the_fault_in_stops() -> None:
    taken = lr.darkening("side light 4 stops", (64, 64), index=0, box=None)  # index 0: darker on the left
    assert taken.max() == pytest.approx(0.0, abs=0.05) and taken.min() == pytest.approx(-4.0, abs=0.1)
    assert taken[:, :8].mean() < taken[:, -8:].mean()
    deep = lr.darkening("lesion cast shadow 6 stops", (64, 64), index=0, box=(0.0, 0.0, 1.0, 1.0))
    assert deep.min() == pytest.approx(-6.0, abs=0.1)  # GREY keeps 6 stops readable


def test_lesion_mask_is_the_union_of_the_boxes() -> None:
    mask = lr.lesion_mask(np.array([[0, 0.25, 0.25, 0.5, 0.5], [1, 0.75, 0.75, 0.1, 0.1]]), (100, 100))
    assert mask[:50, :50].all() and mask[70:80, 70:80].all()
    assert np.count_nonzero(mask) == 50 * 50 + 10 * 10


def test_reach_of_a_shadow_on_the_lesions_and_away_from_them(tmp_path: Path) -> None:
    # lesions on the left edge; the frame-wide cast shadow of grid index 0 covers the left 30-60% of the frame
    left = labels(tmp_path / "left.txt", ["0 0.05 0.5 0.06 0.06"])
    right = labels(tmp_path / "right.txt", ["0 0.95 0.5 0.06 0.06"])
    shadow = ("cast shadow 3 stops",)
    assert lr.reaches(shadow, (120, 120), 0, left) == {shadow[0]: pytest.approx(1.0)}
    assert lr.reaches(shadow, (120, 120), 0, right) == {shadow[0]: pytest.approx(0.0)}
    assert lr.reaches(shadow, (120, 120), 0, tmp_path / "none.txt") is None


def test_table_splits_the_catch_by_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {"set": "valid", "part": "report", "photo": f"p{k}", "kind": "cast shadow 3 stops", "label": "uneven_lighting",
         "measures": {}}
        for k in range(4)
    ]  # fmt: skip
    reaches = {("valid", f"p{k}", "cast shadow 3 stops"): value for k, value in enumerate((1.0, 0.9, 0.1, 0.0))}
    caught_photos = {"p0", "p1", "p2"}

    def replay(rows: list[dict], thresholds: object) -> list[QualityReport]:
        return [
            QualityReport(accepted=row["photo"] not in caught_photos,
                          retake_codes=["uneven_lighting"] if row["photo"] in caught_photos else [])
            for row in rows
        ]  # fmt: skip

    monkeypatch.setattr(lr, "replay", replay)
    results = lr.outcomes(rows, reaches)
    assert results["cast shadow 3 stops"]["report+holdout"] == results["cast shadow 3 stops"]["report"]
    table = lr.reach_table(results)
    report = next(row for row in table if row[:2] == ["cast shadow 3 stops", "report"])
    assert report[2].startswith("75.0") and report[2].endswith("(4)")
    assert report[3].startswith("100.0") and report[3].endswith("(2)")  # both reaching copies caught
    assert report[4].startswith("50.0") and report[4].endswith("(2)")
    assert report[5] == "0.50"


def test_plot_is_written(tmp_path: Path) -> None:
    results = {"cast shadow 3 stops": {"report+holdout": [(k / 20, k % 3 > 0) for k in range(20)]}}
    assert lr.reach_plot(results, tmp_path / "reach.png").is_file()
