"""The gate fit's threshold choice over a pool of rows scored by different fits (`fit_quality_gate --out-of-fold`).

Out-of-fold rows are scored by the fit made without their fold, selection rows by the shipped one; a threshold is
one logit level for all of them. These tests build small fits in code (no measures file, no photos).
"""

from __future__ import annotations

import json

import numpy as np

from bench import fit_quality_gate as fq
from quality_gate import ood


def _fit(rng: np.random.Generator, coef: float) -> tuple[dict, dict]:
    """A one-code fit (too_dark over skin_highlight) and out-of-distribution statistics of random rows."""
    model = {"features": ["skin_highlight"], "mean": [0.0], "scale": [1.0], "coef": [coef], "intercept": 0.0}
    stats = ood.fit_stats(rng.normal(size=(200, len(ood.FEATURES))))
    return {"codes": {"too_dark": {**model, "threshold": 0.0}}}, stats


def _measures(rng: np.random.Generator, highlight: float) -> dict:
    values = {name.removeprefix("log_"): float(np.exp(rng.normal())) for name in ood.FEATURES}
    return values | {"skin_highlight": highlight}


def test_one_threshold_from_each_rows_own_fit_set_on_every_fit() -> None:
    rng = np.random.default_rng(0)
    shipped, shipped_stats = _fit(rng, 1.0)
    fold_fit, fold_stats = _fit(rng, 3.0)  # scores its rows three times as steeply
    highlights = np.linspace(-1.0, 1.0, 101)
    pool = [fq.Scored(_measures(rng, h), shipped, shipped_stats, "all", True) for h in highlights]
    pool += [fq.Scored(_measures(rng, h), fold_fit, fold_stats, "all", False) for h in highlights]

    fq.choose_thresholds(pool, shipped, shipped_stats, 0.05, 0.05, {})

    threshold = shipped["codes"]["too_dark"]["threshold"]
    assert fold_fit["codes"]["too_dark"]["threshold"] == threshold
    assert fold_stats["threshold"] == shipped_stats["threshold"]
    # the quantile of both fits' own scores: the fold's steeper rows hold the top 5%, so the threshold is above the
    # shipped fit's own largest score, which a quantile of the shipped fit's scores alone could never be
    scores = np.concatenate([highlights, 3.0 * highlights])
    assert threshold == np.quantile(scores, 0.95)
    assert threshold > highlights.max()
    assert "and 101 out-of-fold fit-sample ones" in shipped["codes"]["too_dark"]["chosen_on"]


def test_selection_pool_alone_reproduces_the_selection_quantile() -> None:
    rng = np.random.default_rng(1)
    shipped, shipped_stats = _fit(rng, 1.0)
    rows = [
        {"set": "valid", "part": part, "label": label, "kind": "good", "measures": _measures(rng, h)}
        for h in np.linspace(-1.0, 1.0, 41)
        for part, label in (("selection", None), ("report", None), ("selection", "too_dark"))
    ]
    pool = fq.threshold_pool(rows, shipped, shipped_stats)
    assert len(pool) == 41 and all(s.selection for s in pool)  # the good selection rows only

    fq.choose_thresholds(pool, shipped, shipped_stats, 0.1, 0.1, {})

    good = [r for r in rows if r["part"] == "selection" and r["label"] is None]
    assert shipped["codes"]["too_dark"]["threshold"] == fq.code_threshold(good, shipped["codes"]["too_dark"], 0.1)
    assert "out-of-fold" not in shipped["codes"]["too_dark"]["chosen_on"]


def test_the_edge_checks_budget_sets_its_limit_on_the_pool_and_only_when_searched() -> None:
    rng = np.random.default_rng(2)
    shipped, shipped_stats = _fit(rng, 1.0)
    widths = np.linspace(2.5, 4.5, 201)
    pool = [fq.Scored(_measures(rng, 0.0) | {fq.EDGE_CHECK: w}, shipped, shipped_stats, "all", True) for w in widths]
    assert fq.trial_thresholds(pool, {"blurry": 0.003}) == fq.Thresholds()  # no edge budget: the shipped check
    limit = fq.trial_thresholds(pool, {fq.EDGE_CHECK: 0.01}).max_edge_width
    assert limit == np.quantile(widths, 0.99)
    assert np.mean(widths > limit) <= 0.01 + 1e-9


def test_a_partial_refit_replaces_only_its_codes_and_keeps_the_statistics(tmp_path) -> None:
    rng = np.random.default_rng(3)
    shipped, shipped_stats = _fit(rng, 1.0)
    shipped["codes"]["motion_blur"] = {**shipped["codes"]["too_dark"], "threshold": 1.0}
    model_path, stats_path = tmp_path / "verdict.json", tmp_path / "ood_stats.json"
    fq.write_fit(shipped, shipped_stats, model_path=model_path, stats_path=stats_path)
    refit, refit_stats = _fit(rng, 2.0)
    refit["codes"]["motion_blur"] = {**refit["codes"]["too_dark"], "threshold": 2.0}
    before = stats_path.read_text()

    assert "motion_blur" in fq.write_fit(refit, refit_stats, ["motion_blur"], model_path, stats_path)

    written = json.loads(model_path.read_text())["codes"]
    assert written["motion_blur"] == refit["codes"]["motion_blur"]
    assert written["too_dark"] == shipped["codes"]["too_dark"]  # not asked for: as shipped
    assert stats_path.read_text() == before
