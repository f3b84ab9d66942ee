"""Judge the shipped quality gate on cached measures: false rejects, catch rate per degradation, per skin tone,
non-skin refusal; selection and report parts of ACNE04 `valid` side by side.

    nice -n 10 .venv/bin/python bench/gate_measure.py --out var/gate/measures.json    # once, ~10 min
    .venv/bin/python bench/fit_quality_gate.py --measures var/gate/measures.json      # fit (train + selection)
    .venv/bin/python bench/calibrate_quality_gate.py --measures var/gate/measures.json [--markdown]

Every row is replayed through `quality_gate.policy.judge` with the shipped `verdict.json` and
`ood_stats.json`. The *report* part of `valid` (detector/datasets/splits.py), the *holdout* train photos (outside
the fit sample: `gate_measure.py --sets holdout`) and the held-back non-skin images (seeds no fit saw, two families
no fit saw at all) are the figures to quote; the *selection* part is shown beside them because the thresholds were
chosen on it. Several measure files may be given (e.g. valid and holdout measured apart).

"Caught" counts a degraded photo as caught when it is refused with the expected code (for motion blur:
`motion_blur` or `blurry`); "refused, any code" counts every refusal (side light refused as `too_dark` is not
analysed either, though its hint is the less precise one). Non-skin images count as refused on any
code; "as not_skin_photo/no_skin" says how many got a content code. Real non-skin photos (`--sets real`) are
listed per source image of the report role; the development role's are fitted on.

`--bars` prints issue 12's bars on the report part, the holdout and the two pooled, each with a 95% interval
clustered by photo (`bench/intervals.py`), and whether the point estimate and the whole interval meet the bar: a bar
the interval straddles is "not settled", which 141 report photos cannot settle for a 98% catch even when all are
caught. `--sweep` replays the grid with every learned threshold moved together (`learned_offset`) and counts the bars
each setting meets, on selection and on report + holdout: a description of the trade-off, not a choice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter, defaultdict
from pathlib import Path

from bench import gate_data as gd
from bench.figures import save_figure
from bench.intervals import clustered_interval, share, share_cell
from quality_gate import ood, verdict
from quality_gate.policy import QualityReport, Thresholds, judge

PARTS = ("selection", "report", "holdout")
GRID_SETS = ("valid", "holdout")  # photos through the fixed grid of degradations


@dataclasses.dataclass(frozen=True)
class Gate:
    """A gate to replay cached measures through: its learned models, out-of-distribution statistics and thresholds
    (the shipped files by default; a candidate's in `bench/gate_compare.py`)."""

    thresholds: Thresholds
    models: dict = dataclasses.field(default_factory=verdict.load_models)
    stats: dict = dataclasses.field(default_factory=ood.load_stats)

    def report(self, measures: dict) -> QualityReport:
        values = dict(measures)
        values["ood_distance"] = ood.ood_distance(values, self.stats)
        return judge(values, self.thresholds, self.models, self.stats)


def replay(rows: list[dict], thresholds: Thresholds) -> list[QualityReport]:
    gate = Gate(thresholds)
    return [gate.report(row["measures"]) for row in rows]


def caught(row: dict, report: QualityReport) -> bool:
    expected = row["label"]
    if expected == "motion_blur":
        return bool({"motion_blur", "blurry"} & set(report.retake_codes))
    return expected in report.retake_codes


def pct(hits: int, n: int) -> str:
    return f"{100.0 * hits / n:.1f}" if n else "-"


def degradation_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    by_kind: dict[str, dict[str, list[tuple[dict, QualityReport]]]] = defaultdict(lambda: defaultdict(list))
    for row, report in zip(rows, reports, strict=True):
        if row["set"] in GRID_SETS:
            by_kind[row["kind"]][row["part"]].append((row, report))
    table = [
        [
            "degradation",
            "expected",
            "n sel/rep/hold",
            "selection %",
            "report %",
            "holdout %",
            "refused, any code: report / holdout %",
            "report: codes seen",
        ]
    ]
    for kind, parts in by_kind.items():
        expected = next(iter(pairs for pairs in parts.values() if pairs))[0][0]["label"]
        cells = []
        for part in PARTS:
            pairs = parts[part]
            if expected is None:
                cells.append(pct(sum(not r.accepted for _, r in pairs), len(pairs)))
            else:
                cells.append(pct(sum(caught(row, r) for row, r in pairs), len(pairs)))
        refused = " / ".join(pct(sum(not r.accepted for _, r in parts[p]), len(parts[p])) for p in PARTS[1:])
        codes = Counter(code for _, r in parts["report"] for code in r.retake_codes)
        table.append(
            [
                kind,
                expected or "(good: false rejects)",
                "/".join(str(len(parts[part])) for part in PARTS),
                *cells,
                refused,
                ", ".join(f"{c} {n}" for c, n in codes.most_common(4)),
            ]
        )
    return table


def false_reject_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    photos: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))  # unseen rows by photo
    for row, report in zip(rows, reports, strict=True):
        if row["set"] in GRID_SETS and row["label"] is None:
            names = ["all good photos and copies"] + (["good photos as they are"] if row["kind"] == "good" else [])
            if "ita" in row and row["ita"] == row["ita"]:
                names.append("ITA " + gd.ita_group(row["ita"]))
            # severe acne is the least like plain skin, and the photo that most needs analysing
            names.append(f"acne grade {gd.grade_of(row['photo'])}")
            for name in names:
                groups[name][row["part"]].append(not report.accepted)
                if row["part"] != "selection":
                    photos[name][f"{row['part']}/{row['photo']}"].append(not report.accepted)
    table = [
        [
            "good photos",
            "n sel/rep/hold",
            *(f"false rejects {part} %" for part in PARTS),
            "report+holdout % [95%, by photo]",
        ]
    ]
    order = ["all good photos and copies", "good photos as they are"] + ["ITA " + name for _, name in gd.ITA_GROUPS]
    order += [f"acne grade {grade}" for grade in "0123"]
    for name in order:
        if name in groups:
            parts = groups[name]
            table.append(
                [
                    name,
                    "/".join(str(len(parts[part])) for part in PARTS),
                    *(pct(sum(parts[part]), len(parts[part])) for part in PARTS),
                    share_cell(photos[name]),
                ]
            )
    return table


def non_skin_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    by_family: dict[str, dict[str, list[QualityReport]]] = defaultdict(lambda: defaultdict(list))
    for row, report in zip(rows, reports, strict=True):
        if row["set"] == "nonskin":
            family = row["kind"] + (" (family never fitted)" if row["kind"] in gd.HELD_OUT_FAMILIES else "")
            by_family[family][row["part"]].append(report)
            by_family["all held-back non-skin"][row["part"]].append(report)
    table = [["non-skin images", "n sel/rep", "refused selection %", "refused report %", "report: content code %"]]
    for family, parts in sorted(by_family.items(), key=lambda kv: kv[0].startswith("all")):
        sel, rep = parts["selection"], parts["report"]
        content = sum(bool({"not_skin_photo", "no_skin"} & set(r.retake_codes)) for r in rep)
        table.append(
            [
                family,
                f"{len(sel)}/{len(rep)}",
                pct(sum(not r.accepted for r in sel), len(sel)),
                pct(sum(not r.accepted for r in rep), len(rep)),
                pct(content, len(rep)),
            ]
        )
    return table


def real_photo_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    """Real photos that show no skin (`gate_measure.py --sets real`), per source image of the report role, and in all.
    The development role's are fitted on (their figure by leave-one-source-out is `bench/real_nonskin_cv.py`'s)."""
    by_photo: dict[str, list[tuple[dict, QualityReport]]] = defaultdict(list)
    for row, report in zip(rows, reports, strict=True):
        if row["set"] == "real":
            by_photo[
                row["photo"]
                if row["part"] == "report"
                else "all development photos (fitted on; by source held out: bench/real_nonskin_cv.py)"
            ].append((row, report))
            if row["part"] == "report":
                by_photo["all report photos"].append((row, report))
    table = [["real non-skin photo", "views", "refused, any code %", "whole photo", "as not_skin_photo %"]]
    for photo, pairs in sorted(by_photo.items(), key=lambda kv: (kv[0].startswith("all"), kv[0])):
        whole = [report for row, report in pairs if row["kind"] == "real whole"]
        table.append(
            [
                photo,
                str(len(pairs)),
                pct(sum(not r.accepted for _, r in pairs), len(pairs)),
                ",".join(r.retake_codes[0] if r.retake_codes else "ACCEPTED" for r in whole)
                if len(whole) == 1
                else f"{sum(not r.accepted for r in whole)}/{len(whole)} refused",
                pct(sum("not_skin_photo" in r.retake_codes for _, r in pairs), len(pairs)),
            ]
        )
    return table


# issue 12's bars: (name, the rows it counts, "max" for a false-reject ceiling or "min" for a catch floor, target)
BARS: tuple[tuple[str, str, str, float], ...] = (
    ("false rejects, good photos as they are", "good", "max", 0.02),
    ("false rejects, good photos and their copies", "(good and copies)", "max", 0.02),
    *((f"caught: {kind}", kind, "min", 0.98) for kind in (
        "darker 2 stops", "darker 3 stops", "brighter 2 stops", "brighter 3 stops",
        "gaussian blur s=2", "gaussian blur s=3", "gaussian blur s=2 +noise+JPEG",
        "motion blur 12 px", "motion blur 12 px +noise+JPEG", "motion blur 25 px",
        "downscale 240 px", "downscale 160 px",
        "lesion side light 4 stops", "lesion cast shadow 3 stops", "side light 4 stops", "cast shadow 3 stops",
    )),
    ("refused: held-back generated non-skin", "(generated non-skin)", "min", 0.95),
    ("refused: real non-skin views (report photos)", "(real non-skin views)", "min", 0.95),
)  # fmt: skip


def bar_outcomes(rows: list[dict], reports: list[QualityReport]) -> dict[str, dict[str, dict[str, list[bool]]]]:
    """Bar name -> part -> cluster (photo) -> one outcome per row: refused (false-reject bars), caught with the
    expected code (catch bars) or refused on any code (non-skin bars)."""
    select = {kind: name for name, kind, _, _ in BARS}
    out: dict[str, dict[str, dict[str, list[bool]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row, report in zip(rows, reports, strict=True):
        keys = []
        if row["set"] in GRID_SETS:
            keys = [row["kind"]] + (["(good and copies)"] if row["label"] is None else [])
        elif row["set"] == "nonskin" and row["kind"] in gd.NON_SKIN:  # generated families (valid crops aside)
            keys = ["(generated non-skin)"]
        elif row["set"] == "real" and row["part"] == "report":
            keys = ["(real non-skin views)"]
        for key in keys:
            if key in select:
                refusal = row["label"] is None or row["set"] not in GRID_SETS  # good photos; non-skin, any code
                outcome = not report.accepted if refusal else caught(row, report)
                out[select[key]][row["part"]][row["photo"]].append(outcome)
    return out


def _unseen_parts(parts: dict[str, dict[str, list[bool]]]) -> dict[str, dict[str, list[bool]]]:
    """A bar's outcomes on the report part, the holdout and the two pooled (clusters keyed by part and photo)."""
    pooled = {f"{part}/{photo}": v for part in ("report", "holdout") for photo, v in parts.get(part, {}).items()}
    return {"report": parts.get("report", {}), "holdout": parts.get("holdout", {}), "report+holdout": pooled}


def bar_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    """Issue 12's bars on the parts no choice read (report, holdout, the two pooled), each with its 95% interval, and
    whether the bar is met by the point estimate and by the whole interval: with 141 report photos even a perfect
    catch has a lower bound of 97.3%, so a 98% bar can only be settled on the pooled photos."""
    outcomes = bar_outcomes(rows, reports)
    table = [["bar", "target", "report % [95%]", "holdout % [95%]", "report+holdout % [95%]", "point", "interval"]]
    for name, _, side, target in BARS:
        unseen = _unseen_parts(outcomes.get(name, {}))
        cells = []
        for clusters in unseen.values():
            n = sum(len(v) for v in clusters.values())
            cells.append(f"{share_cell(clusters)} n={n}" if n else "-")
        pooled = unseen["report+holdout"]
        if pooled:
            rate, (low, high) = share(pooled), clustered_interval(pooled)
            good = rate <= target if side == "max" else rate >= target
            settled = high <= target if side == "max" else low >= target
            refuted = low > target if side == "max" else high < target
            verdicts = ["met" if good else "short", "met" if settled else "short" if refuted else "not settled"]
        else:
            verdicts = ["-", "-"]
        table.append([name, f"{'<=' if side == 'max' else '>='} {100 * target:.0f}%", *cells, *verdicts])
    return table


def bars_plot(rows: list[dict], reports: list[QualityReport], path: Path) -> Path:
    """Each bar's share on report, holdout and the two pooled with its 95% interval, against the bar (red): where an
    interval crosses the red mark, the photos cannot yet say whether the bar is met. False rejects on the left,
    catches and refusals on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = bar_outcomes(rows, reports)
    groups = [[bar for bar in BARS if bar[2] == "max"], [bar for bar in BARS if bar[2] == "min"]]
    fig, axes = plt.subplots(1, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [1, 2.2]})
    styles = {
        "report": ("o", "#4477aa", 0.22),
        "holdout": ("s", "#228833", 0.0),
        "report+holdout": ("D", "#222222", -0.22),
    }
    for ax, bars in zip(axes, groups, strict=True):
        for y, (name, _, _, target) in enumerate(bars):
            ax.plot([100 * target] * 2, [y - 0.4, y + 0.4], color="#cc3311", lw=2)
            for part, clusters in _unseen_parts(outcomes.get(name, {})).items():
                if not any(clusters.values()):
                    continue
                marker, colour, dy = styles[part]
                rate, (low, high) = 100 * share(clusters), (100 * v for v in clustered_interval(clusters))
                spread = [[max(rate - low, 0.0)], [max(high - rate, 0.0)]]
                label = part if y == 0 else None
                ax.errorbar(rate, y + dy, xerr=spread, fmt=marker, color=colour, ms=4, capsize=2, label=label)
        ax.set_yticks(range(len(bars)), [name.split(": ", 1)[-1] for name, *_ in bars], fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes[0].set(xlabel="refused, % (bar: at most 2%)", title="false rejects")
    axes[1].set(xlabel="caught / refused, % (bar: red)", title="catches and non-skin refusals", xlim=(70, 100.5))
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Issue 12's bars with 95% intervals, clustered by photo (calibrate_quality_gate.py --bars-plot)")
    return save_figure(fig, path)


def offset_sweep(rows: list[dict], offsets: list[float], thresholds: Thresholds) -> list[list[str]]:
    """The gate loosened or tightened as one (`learned_offset` added to every learned threshold), each bar's point
    estimate on selection and on report+holdout: whether any one setting of this gate meets every bar at once, and
    what each bar costs the others. Descriptive: nothing is chosen on it."""
    wanted = {kind for _, kind, _, _ in BARS}
    rows = [r for r in rows if r["set"] in GRID_SETS and (r["kind"] in wanted or r["label"] is None)]
    table = [["learned_offset", "selection: false rejects as is / with copies %", "bars met", "worst catch %",
              "report+holdout: false rejects as is / with copies %", "bars met", "worst catch %"]]  # fmt: skip
    for offset in offsets:
        outcomes = bar_outcomes(rows, replay(rows, dataclasses.replace(thresholds, learned_offset=offset)))
        cells = [f"{offset:+.2f}"]
        for parts in (("selection",), ("report", "holdout")):
            rates, met = {}, 0
            for name, _, side, target in BARS:
                clusters = {
                    f"{part}/{photo}": v for part in parts for photo, v in outcomes.get(name, {}).get(part, {}).items()
                }
                if any(clusters.values()):
                    rates[name] = share(clusters)
                    met += rates[name] <= target if side == "max" else rates[name] >= target
            catches = {name: rate for name, rate in rates.items() if name.startswith("caught")}
            worst = min(catches, key=catches.get) if catches else None
            fr = [rates.get(name) for name, _, _, _ in BARS[:2]]
            cells += [" / ".join("-" if r is None else f"{100 * r:.1f}" for r in fr), f"{met} of {len(rates)}",
                      f"{100 * catches[worst]:.1f} ({worst.removeprefix('caught: ')})" if worst else "-"]  # fmt: skip
        table.append(cells)
    return table


DIRECTION_KINDS = (  # faults at the strength where catches fall short, by the direction the grid gave them
    "side light 4 stops",
    "lesion side light 4 stops",
    "cast shadow 3 stops",
    "lesion cast shadow 3 stops",
    "motion blur 12 px",
    "motion blur 12 px +noise+JPEG",
)


def row_direction(row: dict, order: dict[str, dict[str, int]]) -> float | None:
    """The direction `gate_measure.degrade` gave a grid row: stored with it, or (rows cached before it was) from the
    photo's place in its set's grid order (`order`: set -> photo -> index)."""
    if "direction" in row:
        return row["direction"]
    from bench.gate_measure import grid_direction, grid_photos

    if row["set"] not in order:
        order[row["set"]] = {path.name: k for k, path in enumerate(grid_photos(row["set"]))}
    return grid_direction(row["kind"], order[row["set"]][row["photo"]])


def direction_hits(rows: list[dict], reports: list[QualityReport]) -> dict[tuple[str, float], dict[str, list[bool]]]:
    """(kind, direction) -> part -> caught or not, for each grid row of `DIRECTION_KINDS`, in kind then direction
    order."""
    hits: dict[tuple[str, float], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    order: dict[str, dict[str, int]] = {}
    for row, report in zip(rows, reports, strict=True):
        if row["set"] in GRID_SETS and row["kind"] in DIRECTION_KINDS:
            hits[(row["kind"], row_direction(row, order))][row["part"]].append(caught(row, report))
    return {key: hits[key] for key in sorted(hits, key=lambda key: (DIRECTION_KINDS.index(key[0]), key[1]))}


def direction_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    """Catch of `DIRECTION_KINDS` per direction (degrees; side light: 0 = darker on the left, 45 = darker at the top
    left). A ramp of N stops runs corner to corner along a diagonal, so across the face it is gentler than along
    an edge (a diagonal of 640 x 480 is 800 px long)."""
    hits = direction_hits(rows, reports)
    table = [["degradation", "direction", "n sel/rep/hold", *(f"{part} %" for part in PARTS)]]
    for (kind, direction), parts in hits.items():
        table.append(
            [
                kind,
                f"{direction:.0f}",
                "/".join(str(len(parts[part])) for part in PARTS),
                *(pct(sum(parts[part]), len(parts[part])) for part in PARTS),
            ]
        )
    return table


HINT_FAMILIES = {  # code -> what the user is told to change: light, focus or steadiness, or the light on the skin
    "too_dark": "exposure",
    "too_bright": "exposure",
    "blurry": "blur",
    "motion_blur": "blur",
    "uneven_lighting": "lighting",
}


def hint_table(rows: list[dict], reports: list[QualityReport]) -> list[list[str]]:
    """Per fault of the exposure, blur and lighting families: refused rows, and the share of them also told to fix
    something of another family (a shadowed photo told to hold still): hints that send the user the wrong way."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row, report in zip(rows, reports, strict=True):
        family = HINT_FAMILIES.get(row["label"] or "")
        if row["set"] in GRID_SETS and family and not report.accepted:
            wrong = any(HINT_FAMILIES.get(code, family) != family for code in report.retake_codes)
            counts[row["kind"]][row["part"]][0] += wrong
            counts[row["kind"]][row["part"]][1] += 1
    table = [["degradation", "refused sel/rep/hold", *(f"wrong hint too, {part} %" for part in PARTS)]]
    for kind, parts in counts.items():
        refused = "/".join(str(parts[part][1]) for part in PARTS)
        table.append([kind, refused, *(pct(*parts[part]) for part in PARTS)])
    return table


def direction_plot(rows: list[dict], reports: list[QualityReport], path: Path) -> Path:
    """Catch per direction of `DIRECTION_KINDS`, a panel each, a line per part, the 98% target drawn in."""
    hits = direction_hits(rows, reports)
    panels = []
    for kind in DIRECTION_KINDS:
        by_part = {
            part: [(direction, sum(parts[part]) / len(parts[part])) for (k, direction), parts in hits.items()
                   if k == kind and parts[part]]
            for part in PARTS
        }  # fmt: skip
        panels.append((kind, "direction, degrees", by_part))
    return _catch_figure(panels, (2, 3), (13, 6.5), path, ticks=True)


def render(table: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table)


CURVES = {  # family -> (kind prefix, unit): how the catch grows with the strength of each fault
    "darker": ("darker ", "stops"),
    "brighter": ("brighter ", "stops"),
    "gaussian blur": ("gaussian blur s=", "sigma px"),
    "motion blur": ("motion blur ", "px"),
    "side light": ("side light ", "stops"),
    "cast shadow": ("cast shadow ", "stops"),
    "side light on the lesions": ("lesion side light ", "stops"),
    "cast shadow on the lesions": ("lesion cast shadow ", "stops"),
}


def catch_curves(rows: list[dict], reports: list[QualityReport], path: Path) -> Path:
    """Catch rate against strength, one panel per fault family, a line per part, the 98% target drawn in."""
    hits: dict[tuple[str, float, str], list[bool]] = defaultdict(list)
    for row, report in zip(rows, reports, strict=True):
        for family, (prefix, _) in CURVES.items():
            rest = row["kind"][len(prefix) :]
            if row["set"] in GRID_SETS and row["kind"].startswith(prefix) and "+" not in rest:
                hits[(family, float(rest.split()[0]), row["part"])].append(caught(row, report))
    panels = [
        (family, unit, {part: [(s, sum(v) / len(v)) for (f, s, p), v in hits.items() if f == family and p == part]
                        for part in PARTS})
        for family, (_, unit) in CURVES.items()
    ]  # fmt: skip
    return _catch_figure(panels, (2, 4), (14, 6.5), path)


def _catch_figure(
    panels: list[tuple[str, str, dict[str, list[tuple[float, float]]]]],
    shape: tuple[int, int],
    size: tuple[float, float],
    path: Path,
    ticks: bool = False,
) -> Path:
    """One panel per (title, x label, part -> [(x, catch)]), a line per part, the 98% target drawn in; `ticks`: one
    x tick per point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*shape, figsize=size, sharey=True)
    for ax, (title, xlabel, by_part) in zip(axes.ravel(), panels, strict=True):
        for part, style in zip(PARTS, (":", "-", "--"), strict=True):
            if by_part.get(part):
                ax.plot(*zip(*sorted(by_part[part]), strict=True), style, marker="o", label=part)
        ax.axhline(0.98, color="#cc3311", lw=0.8)
        ax.set(title=title, xlabel=xlabel, ylim=(0, 1.02))
        if ticks:
            ax.set_xticks(sorted({x for points in by_part.values() for x, _ in points}))
    for ax in axes[:, 0]:
        ax.set_ylabel("caught with the expected code")
    axes[0, 0].legend(fontsize=8)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--measures", type=Path, nargs="+", default=[Path("var/gate/measures.json")])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--plot", type=Path, help="write catch-rate curves (PNG) here")
    parser.add_argument(
        "--selection-only", action="store_true", help="leave the report part unread (while choices are still open)"
    )
    parser.add_argument("--by-direction", action="store_true", help="also the catch of directed faults per direction")
    parser.add_argument("--direction-plot", type=Path, help="write the catch per direction (PNG) here")
    parser.add_argument("--hints", action="store_true", help="also refused faults told to fix something else too")
    parser.add_argument("--bars", action="store_true", help="also issue 12's bars with 95%% intervals (unseen parts)")
    parser.add_argument("--bars-plot", type=Path, help="write the bars with their intervals (PNG) here")
    parser.add_argument(
        "--sweep", type=float, nargs="+", metavar="OFFSET", help="also the bars with the gate loosened by each offset"
    )
    parser.add_argument(
        "--thresholds",
        type=json.loads,
        default={},
        help="thresholds other than the shipped ones, as JSON (e.g. '{\"max_blur_logit\": Infinity}': without that check)",
    )
    args = parser.parse_args()
    rows = [
        r for path in args.measures for r in json.loads(path.read_text()) if r["set"] in (*GRID_SETS, "nonskin", "real")
    ]
    if args.selection_only:
        rows = [r for r in rows if r["part"] == "selection"]
    reports = replay(rows, Thresholds(**args.thresholds))
    for title, table in (
        ("Degraded valid photos: caught with the expected code (good rows: refused)", degradation_table),
        (
            "False rejects of good photos and copies, by skin tone (ITA of the photo's skin) and acne grade",
            false_reject_table,
        ),
        ("Held-back non-skin images", non_skin_table),
        ("Real photos that show no skin, at phone size (bench/real_images.py)", real_photo_table),
    ):
        print(f"\n{title}\n")
        print(render(table(rows, reports), args.markdown))
    if args.hints:
        print("\nRefused faults also told to fix something of another kind (exposure, blur, lighting)\n")
        print(render(hint_table(rows, reports), args.markdown))
    if args.bars:
        print("\nIssue 12's bars on the parts no choice read, with 95% intervals (clustered by photo)\n")
        print(render(bar_table(rows, reports), args.markdown))
    if args.sweep:
        print("\nThe gate loosened (+) or tightened (-) as one: bars met by the point estimates (learned_offset)\n")
        print(render(offset_sweep(rows, args.sweep, Thresholds(**args.thresholds)), args.markdown))
    if args.by_direction:
        print("\nDirected faults: caught with the expected code, per direction\n")
        print(render(direction_table(rows, reports), args.markdown))
    if args.plot:
        catch_curves(rows, reports, args.plot)
    if args.bars_plot:
        bars_plot(rows, reports, args.bars_plot)
    if args.direction_plot:
        direction_plot(rows, reports, args.direction_plot)


if __name__ == "__main__":
    main()
