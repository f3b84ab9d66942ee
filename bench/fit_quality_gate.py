"""Fit the quality gate's learned verdict and out-of-distribution statistics; write the shipped files.

    .venv/bin/python bench/real_images.py fetch                                     # the real non-skin photos, once
    nice -n 10 .venv/bin/python bench/gate_measure.py --sets train,extra-capture,valid,real --out var/gate/measures.json
    .venv/bin/python bench/fit_quality_gate.py --measures var/gate/measures.json --search-budgets \
        --edge-shares 0.001 0.002 0.003 --catch-floor 0.978                          # -> quality_gate/*.json

Protocol (what each choice sees):
- `quality_gate/ood_stats.json`: mean and covariance fitted on ACNE04 `train` rows only (photos, tone shifts,
  JPEG copies, copies as another phone records them (`extra-capture`: white balance, tone curve, crop, sharpening,
  mirror), skin close-up crops and their focus/motion/lighting degradations; not the exposure faults, which the
  exposure codes own).
- `quality_gate/verdict.json`: one logistic regression per code (boosted trees for `TREE_CODES`) fitted on `train` rows: the code's
  degradations (strong enough) against good photos and their tone shifts and JPEG copies; the in-between
  strengths are left out of the fit. The not_skin_photo model: the generated non-skin images of the fit
  families (seeds 0..24) and background crops of train photos against skin rows (good, close-ups, blurred,
  side-lit), over the distance to `ood_stats.json`, the colour statistics and the texture's direction and fine
  detail. Real non-skin photos of the development role (`gate_measure.py --sets real`, `bench/real_images.py`)
  join the negatives when their measures are given, as they are for the shipped fit; the inputs were chosen by
  `bench/real_nonskin_cv.py` (richer ones caught more real photos and refused more severe acne; issue 12).
- `ood_stats.json` also holds ceilings fitted on the same `train` rows: fine detail (2.5x the fitted maximum),
  colour detail (1.5x), and a joint one for sharp *and* oriented fine texture (both above the fitted 99.5th
  percentile; coherence among the sharper half): colour noise and strokes.
- Decision thresholds (each model's logit, the distance limit) are chosen on the *selection* part of `valid`
  only: the lowest threshold under which at most `--budget` of the good selection photos (as is, JPEG, five
  skin-tone shifts) would be refused by that code (`--code-budget CODE=SHARE` for one code; `--search-budgets`
  tries every combination for the four exposure/blur codes on selection and keeps the best within
  `--max-false-rejects`, then gives uneven lighting the largest budget still within it; `--fair-bands` takes the largest of three ITA bands' own quantiles). The *report* part,
  the holdout train photos and the held-back non-skin images are not read here; `bench/calibrate_quality_gate.py`
  reports on them.
- The edge-width check (`Thresholds.max_edge_width`, a hand threshold in `policy.py`, written there by hand from the
  printed value): `--edge-shares` searches its budget with the four codes'; `--catch-floor 0.978` lets every budget
  combination whose lowest catch reaches the floor tie, and the mean catch of blur with noise and JPEG after it
  (`NOISY_KINDS`) decide among them. Chosen so on 2026-11-28 by a rule fixed first: 0.1%, 4.204 px; every other
  threshold came out as before (docs/quality_gate.md).
- `--out-of-fold` adds the fit sample's good rows to the rows the thresholds and the search are chosen on, each scored
  by a fit made without its fold (5 folds by photo): the holdout's distribution, which selection (142 photos, a
  narrower spread of exposure) stands for poorly. Tried on 2026-11-28 with a rule fixed first (ship if some budgets keep
  both the pooled and the selection false rejects <= 1.8% with the lowest selection catch >= 96%): at the shipped
  budgets the out-of-fold rows were refused 1.92% instead of 3.49%, selection 2.11% instead of 1.71%, and selection
  photos 2 stops darker were caught 32.4% instead of 98.6% (too_dark's threshold 0.75 -> 2.94: the fit sample's
  darkest tone copies score as darkly exposed as valid's 2-stop copies); no budgets kept both within 1.8%. Not shipped.
- Run again on 2026-11-29, `--search-budgets` finds no combination: at its lowest budgets (every code 0.30%, the
  shipped ones) the gate refuses 2.11% of selection, since the networks added after the shipped fit refuse more
  than its 1.8% cap leaves. Without `--search-budgets` (every code at `--budget` 0.30%) today's caches give the shipped
  thresholds back, but not_skin_photo's (1.59 against the shipped 1.71, its rows' feature means moved in the fourth
  digit; docs/quality_gate.md, "How near the motion misses are").
- The shipped motion_blur model (rule M1, 2026-11-29: it reads the full working copy's direction of least detail too)
  comes from `--measures <train,extra-capture,real rows> <valid rows>` with every code at 0.30% (no
  `--search-budgets`), of which only motion_blur was kept: threshold 3.55. `--only motion_blur` writes just that model
  into the shipped verdict.json (every other model and ood_stats.json as they are): on 2026-11-29 (session 28) the
  rebuilt caches gave the shipped file back, every number to its 15th digit. The other models are the earlier fit's;
  that run's rows (smeared the exact way since 2026-11-29) gave blurry 2.18 against the shipped 2.26 and
  not_skin_photo 1.59 against 1.71, every other threshold as shipped. Shipping that run whole, so that this command
  gives the shipped files back (rule F1, same day, selection only), kept false rejects, every bar row, non-skin and
  capture copies at least as they were, but caught 99.1% of selection photos smeared 12 px in twelve directions
  against 99.2% (rule: not lower): not shipped.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from quality_gate import ood, verdict
from quality_gate.policy import QualityReport, Thresholds, judge

GOOD_KINDS_PREFIXES = ("good", "tone ", "noise+JPEG")
EXPOSURE_LABELS = ("too_dark", "too_bright")


def is_good(row: dict) -> bool:
    return row["label"] is None


def fitted_on(row: dict, code: str) -> bool:
    """`train` rows; for not_skin_photo also the real non-skin images of the development role (never `report`)."""
    if code == "not_skin_photo" and row["set"] == "real":
        return row["part"] == "development"
    return row["set"] == "train"


def training_rows(rows: list[dict], code: str) -> tuple[list[dict], np.ndarray]:
    """Rows and 0/1 targets for one code's model (`fitted_on`)."""
    positives = {"blurry": ("blurry", "motion_blur")}.get(code, (code,))
    negatives_extra = {
        "motion_blur": ("blurry",),
        "uneven_lighting": ("closeup",),
        "not_skin_photo": ("closeup", "blurry", "motion_blur", "uneven_lighting"),
    }.get(code, ())
    chosen, target = [], []
    for row in rows:
        if not fitted_on(row, code):
            continue
        if row["label"] in positives:
            chosen.append(row)
            target.append(1.0)
        elif is_good(row) or row["label"] in negatives_extra:
            chosen.append(row)
            target.append(0.0)
    return chosen, np.array(target)


# fitted as boosted trees; every other code as a logistic regression. Tried with a rule fixed first: blurry and
# motion_blur as trees too (`--trees uneven_lighting,blurry,motion_blur --search-budgets`): the search's lowest catch
# over its four target rows on selection fell from 97.9% to 77.5% at the same false rejects (false rejects 1.71% both;
# why the trees separate less was not studied), so blur stays logistic
TREE_CODES = ("uneven_lighting",)
TREES = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05}  # chosen on selection (the note on issue 12)


def fit_trees(x: np.ndarray, target: np.ndarray) -> dict:
    """Boosted regression trees on the log-loss, classes balanced, exported as plain lists for `verdict.tree_logit`."""
    from sklearn.ensemble import GradientBoostingClassifier

    weights = verdict.balanced_weights(target)
    return export_trees(GradientBoostingClassifier(**TREES, random_state=0).fit(x, target, sample_weight=weights), x)


def export_trees(model: Any, x: np.ndarray) -> dict:
    """A fitted binary `GradientBoostingClassifier` as plain lists; `x` (any rows) recovers its initial log-odds."""
    trees = []
    for (estimator,) in model.estimators_:
        tree = estimator.tree_
        trees.append(
            {
                "feature": tree.feature.tolist(),
                "threshold": tree.threshold.tolist(),
                "left": tree.children_left.tolist(),
                "right": tree.children_right.tolist(),
                "value": tree.value[:, 0, 0].tolist(),
            }
        )
    rate = float(model.learning_rate)
    first = x[:1]
    init = float(model.decision_function(first)[0] - rate * sum(e.predict(first)[0] for (e,) in model.estimators_))
    return {"kind": "trees", "init": init, "rate": rate, "trees": trees}


def fit_code(rows: list[dict], code: str, names: list[str], l2: float, trees: bool = False) -> dict:
    """One code's model over the measures `names`, fitted on its `training_rows`; threshold 0 until chosen."""
    chosen, target = training_rows(rows, code)
    x = np.array([verdict.inputs(r["measures"], names) for r in chosen])
    if trees:
        fitted = fit_trees(x, target)
    else:
        mean, scale, coef, intercept = verdict.fit_logistic(x, target, l2=l2)
        fitted = {"mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": intercept}
    return {
        "features": names,
        **fitted,
        "threshold": 0.0,
        "fitted_rows": {"faulty": int(target.sum()), "fine": int(len(target) - target.sum())},
    }


def fit_verdict(rows: list[dict], l2: float, tree_codes: tuple[str, ...] = TREE_CODES) -> dict:
    return {
        "codes": {
            code: fit_code(rows, code, names, l2, code in tree_codes) for code, names in verdict.MODEL_FEATURES.items()
        }
    }


def fit_ood(rows: list[dict]) -> dict:
    fit = [r for r in rows if r["set"] == "train" and r["label"] not in ("not_skin_photo", "ignore", *EXPOSURE_LABELS)]
    stats = ood.fit_stats(np.array([ood.feature_vector(r["measures"]) for r in fit]))
    stats["caps"] = ood.fit_caps([r["measures"] for r in fit])
    stats["joint_caps"] = ood.fit_joint_caps([r["measures"] for r in fit])
    return stats


FAIR_BANDS = False  # True (--fair-bands): each tone band's own quantile, the largest of them
TONE_BANDS = (
    (-30.0, "dark"),
    (10.0, "brown"),
    (999.0, "lighter"),
)  # ITA upper bounds; lighter groups pooled (few rows)


def tone_band(row: dict) -> str:
    angle = row.get("ita", float("nan"))
    if angle != angle:  # no skin found to measure: pooled with the lighter ones
        return "lighter"
    return next(name for bound, name in TONE_BANDS if angle <= bound)


def fair_quantile(scores: np.ndarray, bands: list[str], share: float) -> float:
    """The lowest threshold refusing at most `share` of the rows *of every tone band*: the largest of the bands'
    own quantiles, so the darkest skin (most of the tone-shifted copies) does not pay for the others' catch."""
    return max(float(np.quantile(scores[np.array(bands) == band], 1.0 - share)) for band in set(bands))


def threshold_of(scores: np.ndarray, share: float, bands: list[str]) -> float:
    """The lowest logit threshold refusing at most `share` of the scored rows (of each band), and never below -2."""
    return float(max(fair_quantile(scores, bands, share), -2.0))


def code_threshold(good: list[dict], model: dict, share: float, bands: list[str] | None = None) -> float:
    """`threshold_of` the `good` rows' logits under `model`."""
    scores = np.array([verdict.logit(r["measures"], model) for r in good])
    return threshold_of(scores, share, bands or ["all"] * len(good))


@dataclass(frozen=True)
class Scored:
    """A good row the thresholds are chosen on, with the fit that scores it: the shipped fit for a selection row; for
    an out-of-fold fit-sample row (`--out-of-fold`), the fit made without its fold (its distance in `measures`)."""

    measures: dict
    models: dict
    stats: dict
    band: str
    selection: bool

    @cached_property
    def logits(self) -> dict[str, float]:
        """Each code's logit (thresholds aside): scored once, though the search chooses thresholds hundreds of times."""
        return {code: verdict.logit(self.measures, model) for code, model in self.models["codes"].items()}

    @cached_property
    def distance(self) -> float:
        return ood.distance(ood.feature_vector(self.measures), self.stats)


def pool_bands(pool: list[Scored]) -> list[str]:
    """The tone band of each pooled row with `--fair-bands`, else one band for all."""
    return [s.band for s in pool] if FAIR_BANDS else ["all"] * len(pool)


def threshold_pool(rows: list[dict], models: dict, stats: dict) -> list[Scored]:
    """The good valid-selection rows (photos, tone and JPEG copies), scored by the shipped fit."""
    return [
        Scored(r["measures"], models, stats, tone_band(r), True)
        for r in rows
        if r["set"] == "valid" and r["part"] == "selection" and is_good(r)
    ]


FOLDS = 5  # fit-sample train photos, grouped by photo: held out from the fit in turn


def fold(row: dict) -> int:
    return zlib.crc32(row["photo"].encode()) % FOLDS


def with_distance(row: dict, stats: dict) -> dict:
    """A copy of `row` whose measures carry the distance to `stats` (the not_skin_photo model reads it)."""
    return {**row, "measures": {**row["measures"], "ood_distance": ood.ood_distance(row["measures"], stats)}}


def out_of_fold_pool(rows: list[dict], l2: float, tree_codes: tuple[str, ...]) -> list[Scored]:
    """The fit sample's good rows (photos, tone, JPEG and capture copies), each scored by a fit (statistics and every
    model, as shipped) made without its fold: ~3x the selection part's good rows, of the `train` distribution the
    holdout comes from, at the price of five more fits. The lighting CNN was trained on these photos: its logit on
    them is in-sample, so the whole-gate false rejects of the pool undercount its share (the selection part's do not)."""
    from rich.progress import track

    pool = []
    for k in track(range(FOLDS), description="out-of-fold fits"):
        kept = [r for r in rows if not (r["set"] == "train" and fold(r) == k)]
        stats = fit_ood(kept)
        models = fit_verdict([with_distance(r, stats) for r in kept], l2, tree_codes)
        pool += [
            Scored(with_distance(r, stats)["measures"], models, stats, tone_band(r), False)
            for r in rows
            if r["set"] == "train" and fold(r) == k and is_good(r)
        ]
    return pool


def choose_thresholds(
    pool: list[Scored], models: dict, stats: dict, budget: float, ood_budget: float, budgets: dict[str, float]
) -> None:
    """Per code, the lowest threshold refusing at most its budget (`budgets[code]`, else `budget`) of the `pool`'s
    rows (of each skin-tone band with `--fair-bands`); set on `models`/`stats` and on every fit in the pool, so
    `judge` replays each pooled row with the thresholds chosen."""
    bands = pool_bands(pool)
    fits = {id(s.models): (s.models, s.stats) for s in pool} | {id(models): (models, stats)}
    selection = sum(s.selection for s in pool)
    source = f"valid selection: {selection} good photos and tone/JPEG copies" + (
        f", and {len(pool) - selection} out-of-fold fit-sample ones" if len(pool) > selection else ""
    )
    for code, model in models["codes"].items():
        share = budgets.get(code, budget)
        scores = np.array([s.logits[code] for s in pool])
        threshold = threshold_of(scores, share, bands)
        for fit_models, _ in fits.values():
            fit_models["codes"][code]["threshold"] = threshold
        model["chosen_on"] = f"{source}, <= {share:.2%} refused" + (" per tone band" if FAIR_BANDS else "")
    distances = np.array([s.distance for s in pool])
    threshold = float(max(fair_quantile(distances, bands, ood_budget), stats["reference_distance"]))
    for _, fit_stats in fits.values():
        fit_stats["threshold"] = threshold
    stats["chosen_on"] = f"{source}, <= {ood_budget:.2%} refused" + (" per tone band" if FAIR_BANDS else "")


SEARCHED_CODES = ("too_dark", "too_bright", "blurry", "motion_blur")
SEARCH_SHARES = (0.003, 0.006, 0.01, 0.015)
SEARCH_KINDS = {  # the degradations at the limits, and the code that must catch each
    "darker 2 stops": "too_dark",
    "brighter 2 stops": "too_bright",
    "gaussian blur s=2": "blurry",
    "motion blur 12 px": "motion_blur",
}
NOISY_KINDS = ("gaussian blur s=2 +noise+JPEG", "motion blur 12 px +noise+JPEG")  # blur as a phone records it
EDGE_CHECK = "edge_width"  # the budget key of the edge-width check (`--edge-shares`; `Thresholds.max_edge_width`)


def trial_thresholds(pool: list[Scored], budgets: dict[str, float]) -> Thresholds:
    """The hand thresholds a trial judges with: the shipped ones, and with an `EDGE_CHECK` budget the edge width that
    refuses at most that share of the pool's good rows."""
    if EDGE_CHECK not in budgets:
        return Thresholds()
    widths = np.array([s.measures[EDGE_CHECK] for s in pool])
    return Thresholds(max_edge_width=float(fair_quantile(widths, pool_bands(pool), budgets[EDGE_CHECK])))


def trial_gate(
    pool: list[Scored], models: dict, stats: dict, budgets: dict[str, float], args: argparse.Namespace
) -> tuple[Callable[[dict], QualityReport], Thresholds]:
    """The verdict of the shipped fit with thresholds chosen under `budgets` (set in place, on every fit in the pool),
    and the hand thresholds it judges with."""
    choose_thresholds(pool, models, stats, args.budget, args.ood_budget, budgets)
    thresholds = trial_thresholds(pool, budgets)
    return lambda measures: judge(measures, thresholds, models, stats), thresholds


def refused_shares(pool: list[Scored], thresholds: Thresholds) -> tuple[float, float]:
    """Shares of the pool's good rows, and of its selection rows, refused at the thresholds last chosen."""
    refused = np.array([not judge(s.measures, thresholds, s.models, s.stats).accepted for s in pool])
    return float(refused.mean()), float(refused[[s.selection for s in pool]].mean())


def search_budgets(
    rows: list[dict], pool: list[Scored], models: dict, stats: dict, args: argparse.Namespace, fixed: dict[str, float]
) -> dict[str, float]:
    """Per-code budgets for the four codes just short of 98%, chosen on the *selection* part (and the pool) only.

    Every combination of `SEARCH_SHARES` for the four codes not given a `fixed` budget (`--code-budget`), and of
    `--edge-shares` for the edge-width check when given, is replayed through `policy.judge`, the other codes at their
    fixed budgets or `--budget`; among those refusing at most `--max-false-rejects` of the pool's good rows (and of the
    selection part's alone, which the pool holds), the one with the highest lowest catch rate over `SEARCH_KINDS` on
    selection wins (ties: fewer false rejects). With `--catch-floor`, every lowest catch at or above the floor ties,
    and the mean catch of `NOISY_KINDS` decides among them first.
    """
    import itertools

    from bench.calibrate_quality_gate import caught

    kinds = (*SEARCH_KINDS, *NOISY_KINDS)
    hard = [r for r in rows if r["set"] == "valid" and r["part"] == "selection" and r["kind"] in kinds]
    best: tuple[tuple[float, ...], float, float, dict[str, float]] | None = None
    dimensions = {code: SEARCH_SHARES for code in SEARCHED_CODES if code not in fixed}
    if args.edge_shares:
        dimensions[EDGE_CHECK] = tuple(args.edge_shares)
    for shares in itertools.product(*dimensions.values()):
        budgets = dict(zip(dimensions, shares, strict=True))
        verdict_of, thresholds = trial_gate(pool, models, stats, fixed | budgets, args)
        refused, refused_selection = refused_shares(pool, thresholds)
        rates = {
            kind: np.mean([caught(r, verdict_of(r["measures"])) for r in hard if r["kind"] == kind]) for kind in kinds
        }
        worst = min(rates[kind] for kind in SEARCH_KINDS)
        noisy = float(np.mean([rates[kind] for kind in NOISY_KINDS]))
        caught_text = " ".join(f"{rates[kind]:.1%}" for kind in SEARCH_KINDS)
        shares_text = f"{refused:.2%}" + (
            f" (selection {refused_selection:.2%})" if refused != refused_selection else ""
        )
        print(
            f"{budgets}  false rejects {shares_text}  caught {caught_text}  lowest {worst:.2%}  noisy blur {noisy:.1%}",
            flush=True,
        )
        key = (min(worst, args.catch_floor), noisy, -refused) if args.catch_floor is not None else (worst, -refused)
        if max(refused, refused_selection) <= args.max_false_rejects and (best is None or key > best[0]):
            best = (key, worst, refused, budgets)
    if best is None:
        raise SystemExit("no combination within the false-reject budget")
    _, worst, refused, budgets = best
    print(f"chosen: {budgets} (false rejects {refused:.2%}, lowest catch on selection {worst:.2%})")
    return budgets


LIGHTING_SHARES = (0.003, 0.006, 0.01, 0.015, 0.02, 0.03)


def lighting_budget(
    pool: list[Scored], models: dict, stats: dict, budgets: dict[str, float], args: argparse.Namespace
) -> float:
    """The uneven-lighting budget, chosen after the four codes': the largest of `LIGHTING_SHARES` under which the
    pool's good rows (and the selection part's alone) are still refused at most `--max-false-rejects` in all.
    Lighting is the code furthest from its target, so what the other four leave of the false-reject budget goes to it."""
    chosen = LIGHTING_SHARES[0]
    for share in LIGHTING_SHARES:
        _, thresholds = trial_gate(pool, models, stats, budgets | {"uneven_lighting": share}, args)
        refused, refused_selection = refused_shares(pool, thresholds)
        print(f"uneven_lighting budget {share:.1%}: false rejects {refused:.2%} (selection {refused_selection:.2%})")
        if max(refused, refused_selection) <= args.max_false_rejects:
            chosen = share
    print(f"chosen: uneven_lighting budget {chosen:.1%}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measures", type=Path, nargs="+", default=[Path("var/gate/measures.json")])
    parser.add_argument("--budget", type=float, default=0.003, help="share of good selection photos per code")
    parser.add_argument("--ood-budget", type=float, default=0.003)
    parser.add_argument(
        "--code-budget",
        action="append",
        default=[],
        metavar="CODE=SHARE",
        help="a code's own budget, e.g. blurry=0.006 (chosen on selection: see the note on issue 12)",
    )
    parser.add_argument("--search-budgets", action="store_true", help="choose the four codes' budgets on selection")
    parser.add_argument("--max-false-rejects", type=float, default=0.018, help="for --search-budgets")
    parser.add_argument(
        "--edge-shares",
        type=float,
        nargs="+",
        help="for --search-budgets: also search the edge-width check's budget among these shares",
    )
    parser.add_argument(
        "--catch-floor",
        type=float,
        help="for --search-budgets: lowest catches at or above this tie, the noisy blur rows decide",
    )
    parser.add_argument(
        "--fair-bands", action="store_true", help="thresholds refusing at most the budget of *each* tone band"
    )
    parser.add_argument(
        "--out-of-fold",
        action="store_true",
        help="choose thresholds on the fit sample's good rows too, each scored by a fit made without its fold",
    )
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument(
        "--trees", default=",".join(TREE_CODES), help="codes fitted as boosted trees (comma-separated; '' for none)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="CODE",
        help="write only these codes' models into the shipped verdict.json; every other model and ood_stats.json stay",
    )
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the shipped files")
    args = parser.parse_args()
    if args.only and not set(args.only) <= set(verdict.MODEL_FEATURES) - {"not_skin_photo"}:
        # not_skin_photo reads the distance to the statistics fitted here, which --only does not ship
        parser.error(f"--only takes codes of {sorted(set(verdict.MODEL_FEATURES) - {'not_skin_photo'})}")
    sets = ("train", "valid", "real")
    rows = [r for path in args.measures for r in json.loads(path.read_text()) if r["set"] in sets]
    global FAIR_BANDS
    FAIR_BANDS = args.fair_bands
    stats = fit_ood(rows)
    for row in rows:  # the not_skin_photo model reads the distance to the fitted statistics
        row["measures"]["ood_distance"] = ood.ood_distance(row["measures"], stats)
    tree_codes = tuple(code for code in args.trees.split(",") if code)
    models = fit_verdict(rows, args.l2, tree_codes)
    pool = threshold_pool(rows, models, stats)
    if args.out_of_fold:
        pool += out_of_fold_pool(rows, args.l2, tree_codes)
    budgets = {code: float(share) for code, share in (item.split("=", 1) for item in args.code_budget)}
    if args.search_budgets:
        budgets = search_budgets(rows, pool, models, stats, args, budgets) | budgets
        if "uneven_lighting" not in budgets:
            budgets["uneven_lighting"] = lighting_budget(pool, models, stats, budgets, args)
    choose_thresholds(pool, models, stats, args.budget, args.ood_budget, budgets)
    if EDGE_CHECK in budgets:  # a hand threshold, so it is written into policy.py by hand, like max_lighting_logit
        limit = trial_thresholds(pool, budgets).max_edge_width
        print(
            f"edge width check: {limit:.3f} px ({budgets[EDGE_CHECK]:.2%} of the good rows): Thresholds.max_edge_width"
        )
    for code, model in models["codes"].items():
        if model.get("kind") == "trees":
            coefs = f"{len(model['trees'])} trees over {', '.join(model['features'])}"
        else:
            coefs = ", ".join(f"{n} {c:+.2f}" for n, c in zip(model["features"], model["coef"], strict=True))
        print(f"{code:16s} threshold {model['threshold']:+.2f}  {model['fitted_rows']}  {coefs}")
    print(
        f"ood: fitted on {stats['n']} rows, reference {stats['reference_distance']:.2f}, "
        f"threshold {stats['threshold']:.2f}, caps {stats['caps']}, joint caps {stats['joint_caps']}"
    )
    if not args.dry_run:
        print(write_fit(models, stats, args.only))


def write_fit(
    models: dict,
    stats: dict,
    only: list[str] | None = None,
    model_path: Path = verdict.MODEL_PATH,
    stats_path: Path = ood.STATS_PATH,
) -> str:
    """Write the fit as the shipped files; with `only`, just those codes' models into the shipped verdict (a partial
    refit, as rule M1 took its motion_blur model), every other model and the statistics kept. Says what it wrote."""
    if only:
        shipped = json.loads(model_path.read_text())
        shipped["codes"] |= {code: models["codes"][code] for code in only}
        verdict.save_models(shipped, model_path)
        return f"wrote {', '.join(only)} into {model_path}"
    verdict.save_models(models, model_path)
    ood.save_stats(stats, stats_path)
    return f"wrote {model_path} and {stats_path}"


if __name__ == "__main__":
    main()
