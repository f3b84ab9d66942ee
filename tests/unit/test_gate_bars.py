"""Issue 12's bar table (`bench/calibrate_quality_gate.py --bars`): intervals, clustering by photo, the verdicts."""

from __future__ import annotations

import pytest

from bench.calibrate_quality_gate import bar_table
from bench.intervals import clustered_interval, wilson
from quality_gate.policy import QualityReport


def test_wilson_matches_the_textbook_values_and_stays_inside_zero_and_one() -> None:
    assert wilson(0, 141) == pytest.approx((0.0, 0.02653), abs=1e-5)  # 0 of 141: up to 2.7%
    low, high = wilson(141, 141)
    assert high == 1.0 and low == pytest.approx(0.97347, abs=1e-5)  # a perfect catch of 141 can't certify 98%
    assert wilson(3, 141) == pytest.approx((0.00726, 0.06068), abs=1e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_copies_of_one_photo_count_for_less_than_as_many_photos() -> None:
    independent = {f"p{i}": [i < 10] for i in range(100)}  # 10 of 100 photos refused
    clustered = {f"p{i}": [i < 1] * 10 for i in range(10)}  # one photo of 10, refused in all ten copies
    assert clustered_interval(independent) == wilson(10, 100)
    low, high = clustered_interval(clustered)
    assert high - low > 2 * (wilson(10, 100)[1] - wilson(10, 100)[0])  # as wide as ~10 photos would give
    spread = {f"p{i}": [k == i for k in range(10)] for i in range(10)}  # one copy of each photo refused
    assert clustered_interval(spread)[1] - clustered_interval(spread)[0] < high - low


def _rows(kind: str, label: str | None, part: str, photos: int) -> list[dict]:
    return [
        {"set": "valid", "part": part, "kind": kind, "label": label, "photo": f"{part}{i}.jpg"} for i in range(photos)
    ]


def test_the_bar_table_pools_report_and_holdout_and_says_which_bars_the_interval_settles() -> None:
    rows = _rows("good", None, "report", 100) + _rows("good", None, "holdout", 400)
    rows += _rows("darker 2 stops", "too_dark", "report", 100) + _rows("darker 2 stops", "too_dark", "holdout", 400)
    rows += _rows("side light 4 stops", "uneven_lighting", "report", 100)
    rows += _rows("darker 2 stops", "too_dark", "selection", 50)  # selection: never in the table
    refused_good = {("report", "report0.jpg"), ("holdout", "holdout0.jpg")}  # 2 of 500 good photos
    reports = []
    for row in rows:
        if row["label"] is None:
            reports.append(QualityReport(False, ["blurry"]) if (row["part"], row["photo"]) in refused_good
                           else QualityReport(True))  # fmt: skip
        elif row["kind"] == "darker 2 stops":
            reports.append(QualityReport(False, ["too_dark"]) if row["part"] != "selection" else QualityReport(True))
        else:  # side light: 60 of 100 caught, the rest refused for something else
            caught = int(row["photo"].removeprefix("report").removesuffix(".jpg")) < 60
            reports.append(QualityReport(False, ["uneven_lighting" if caught else "too_dark"]))
    table = {line[0]: line for line in bar_table(rows, reports)[1:]}
    assert table["false rejects, good photos as they are"][2:] == [
        "1.0 [0.2-5.4] n=100", "0.2 [0.0-1.4] n=400", "0.4 [0.1-1.4] n=500", "met", "met"]  # fmt: skip
    assert table["caught: darker 2 stops"][4:] == ["100.0 [99.2-100.0] n=500", "met", "met"]
    assert table["caught: side light 4 stops"][2:] == ["60.0 [50.2-69.1] n=100", "-", "60.0 [50.2-69.1] n=100",
                                                       "short", "short"]  # fmt: skip
    assert table["caught: brighter 2 stops"][2:] == ["-", "-", "-", "-", "-"]


def test_the_offset_sweep_replays_the_gate_at_each_offset_and_counts_the_bars_met(monkeypatch) -> None:
    from bench import calibrate_quality_gate as calibrate
    from quality_gate.policy import Thresholds

    rows = _rows("good", None, "selection", 50) + _rows("darker 2 stops", "too_dark", "selection", 50)
    rows += _rows("good", None, "report", 50) + _rows("darker 2 stops", "too_dark", "report", 50)

    def replay(rows: list[dict], thresholds: Thresholds) -> list[QualityReport]:
        # looser (offset > 0): 1 good photo in 50 refused and 45 of 50 darker copies caught; tighter: the reverse
        loose = thresholds.learned_offset > 0
        out = []
        for row in rows:
            k = int(row["photo"].removeprefix(row["part"]).removesuffix(".jpg"))
            if row["label"] is None:
                out.append(QualityReport(k >= (1 if loose else 5)))
            else:
                out.append(QualityReport(True) if k >= (45 if loose else 50) else QualityReport(False, ["too_dark"]))
        return out

    monkeypatch.setattr(calibrate, "replay", replay)
    table = calibrate.offset_sweep(rows, [-0.5, 0.5], Thresholds())
    assert table[1] == ["-0.50", "10.0 / 10.0", "1 of 3", "100.0 (darker 2 stops)",
                        "10.0 / 10.0", "1 of 3", "100.0 (darker 2 stops)"]  # fmt: skip
    assert table[2][:4] == ["+0.50", "2.0 / 2.0", "2 of 3", "90.0 (darker 2 stops)"]


def test_when_every_copy_agrees_the_photos_are_counted_not_the_copies() -> None:
    views = {f"photo{i}": [True] * 13 for i in range(10)}  # 10 real photos, 13 views each, all refused
    assert clustered_interval(views) == wilson(10, 10)


def test_false_rejects_by_group_pool_report_and_holdout_by_photo() -> None:
    from bench.calibrate_quality_gate import false_reject_table

    rows, reports = [], []
    for part in ("selection", "report", "holdout"):
        for i in range(20):
            for kind in ("good", "tone L+8"):  # a photo and one copy of it
                rows.append({"set": "valid", "part": part, "kind": kind, "label": None, "ita": 30.0,
                             "photo": f"levle3_{part}{i}.jpg"})  # fmt: skip
                reports.append(QualityReport(not (i == 0 and part != "selection")))  # 1 photo in 20, both copies
    table = {line[0]: line[1:] for line in false_reject_table(rows, reports)[1:]}
    assert table["good photos as they are"] == ["20/20/20", "0.0", "5.0", "5.0", f"5.0 [{wilson_cell(2, 40)}]"]
    # the copies double the rows, not the photos: the interval is the photos' (2 of 40), not 4 of 80 rows'
    assert table["acne grade 3"][-1] == f"5.0 [{wilson_cell(2, 40)}]"


def wilson_cell(hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    return f"{100 * low:.1f}-{100 * high:.1f}"


def test_the_bars_plot_draws_every_bar_with_rows(tmp_path) -> None:
    from bench.calibrate_quality_gate import bars_plot

    rows = _rows("good", None, "report", 20) + _rows("darker 2 stops", "too_dark", "holdout", 20)
    reports = [QualityReport(True)] * 20 + [QualityReport(False, ["too_dark"])] * 20
    plot = bars_plot(rows, reports, tmp_path / "bars.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
