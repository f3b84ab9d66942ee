"""Two quality gates on the same cached rows, paired: what a candidate changes, photo by photo, and how sure that is.

    .venv/bin/python bench/gate_compare.py --measures var/gate/m-valid.json var/gate/m-nonskin.json \
        --verdict candidate/verdict.json --ood-stats candidate/ood_stats.json [--thresholds '{...}'] [--part selection]

The base is the shipped gate (`--base-verdict`, `--base-ood-stats`, `--base-thresholds` change it). For the good rows
(false rejects), each degradation (catch, as `calibrate_quality_gate.caught` counts it) and each family of held-back
non-skin images (refused on any code) it prints both shares, the rows only one gate flags (the discordant pairs: every
other row agrees, so only these carry the difference) and the difference with a 95% interval from resampling photos
(a photo's copies move together). A rule that asks "no more false rejects than the shipped gate" is then read beside
how many rows decide it: one row of 994 is 0.1 points, inside any interval 142 photos give. When every discordant row
goes one way the interval cannot cross zero however few they are (a resample holds those photos or not): read it with
the discordant counts. Last, the rows whose verdict changed, with both gates' codes. Benches that judge images rather than cached measures (`gate_capture.py`, `tone_fairness.py`,
`motion_angles.py`) read the shipped files: run those from a worktree holding the candidate's.

Protocol: a candidate is judged on `selection` (the default); `report` and `holdout` are read once, after a decision,
as every bench here reads them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.calibrate_quality_gate import Gate, caught
from quality_gate.policy import Thresholds

DRAWS = 2000  # photo resamples for each interval


@dataclasses.dataclass(frozen=True)
class Pair:
    """One row judged by both gates: `base` and `other` say whether each refused it (good rows) or caught it."""

    photo: str
    kind: str
    good: bool
    base: bool
    other: bool
    base_codes: list[str]
    other_codes: list[str]


def gate(verdict_path: Path | None, stats_path: Path | None, thresholds: str | None) -> Gate:
    """A gate of these files and thresholds (JSON), the shipped ones where None."""
    files = {}
    if verdict_path:
        files["models"] = json.loads(verdict_path.read_text())
    if stats_path:
        files["stats"] = json.loads(stats_path.read_text())
    return Gate(Thresholds(**json.loads(thresholds)) if thresholds else Thresholds(), **files)


def pairs(rows: list[dict], base: Gate, other: Gate) -> list[Pair]:
    """Every row judged by both gates: refused (good rows, `label` None, and held-back non-skin images, on any code, as
    `calibrate_quality_gate` counts them) or caught with the expected code (degraded photos)."""
    out = []
    for row in rows:
        reports = base.report(row["measures"]), other.report(row["measures"])
        refusal = row["label"] is None or row.get("set") == "nonskin"
        flags = [not r.accepted if refusal else caught(row, r) for r in reports]
        out.append(Pair(row["photo"], row["kind"], row["label"] is None, *flags, *(r.retake_codes for r in reports)))
    return out


def paired_difference(group: list[Pair], seed: int = 0) -> tuple[float, float, float]:
    """Other minus base share in points, with a 95% interval from resampling photos (percentiles of `DRAWS`)."""
    change: dict[str, int] = defaultdict(int)  # per photo: rows only the other gate flags minus rows only the base does
    count: dict[str, int] = defaultdict(int)
    for p in group:
        change[p.photo] += int(p.other) - int(p.base)
        count[p.photo] += 1
    photos = list(count)
    changes = np.array([change[k] for k in photos], float)
    counts = np.array([count[k] for k in photos], float)
    difference = 100.0 * changes.sum() / counts.sum()
    draws = np.random.default_rng(seed).integers(0, len(photos), size=(DRAWS, len(photos)))
    resampled = 100.0 * changes[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return difference, float(low), float(high)


def table(compared: list[Pair]) -> list[str]:
    groups: dict[str, list[Pair]] = defaultdict(list)
    for p in compared:
        if p.good:
            groups["good rows and copies (refused)"].append(p)
        groups[p.kind].append(p)
    lines = [f"{'rows':44s} {'n':>5s} {'base %':>7s} {'other %':>8s} {'only base':>9s} {'only other':>10s}  difference"]
    for name, group in groups.items():
        only_base = sum(p.base and not p.other for p in group)
        only_other = sum(p.other and not p.base for p in group)
        diff, low, high = paired_difference(group)
        lines.append(
            f"{name[:44]:44s} {len(group):5d} {100 * np.mean([p.base for p in group]):7.1f} "
            f"{100 * np.mean([p.other for p in group]):8.1f} {only_base:9d} {only_other:10d}  "
            f"{diff:+.1f} [{low:+.1f}, {high:+.1f}]"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measures", type=Path, nargs="+", required=True)
    parser.add_argument("--part", default="selection", choices=("selection", "report", "holdout"))
    parser.add_argument("--verdict", type=Path, help="the candidate's verdict.json (default: the shipped one)")
    parser.add_argument("--ood-stats", type=Path, help="the candidate's ood_stats.json (default: the shipped one)")
    parser.add_argument("--thresholds", help="the candidate's thresholds other than the defaults (JSON)")
    parser.add_argument("--base-verdict", type=Path)
    parser.add_argument("--base-ood-stats", type=Path)
    parser.add_argument("--base-thresholds")
    args = parser.parse_args()
    rows = [r for path in args.measures for r in json.loads(path.read_text()) if r["part"] == args.part]
    rows = [r for r in rows if r["label"] != "ignore" and r["set"] in ("valid", "holdout", "nonskin")]
    base = gate(args.base_verdict, args.base_ood_stats, args.base_thresholds)
    other = gate(args.verdict, args.ood_stats, args.thresholds)
    compared = pairs(rows, base, other)
    print(f"{args.part}: {len(rows)} rows of {len({r['photo'] for r in rows})} photos; base vs other, paired by photo")
    print("\n".join(table(compared)))
    changed = [p for p in compared if p.base_codes != p.other_codes]
    print(f"\nrows whose codes changed: {len(changed)}")
    for p in changed:
        print(f"  {p.photo[:40]:40s} {p.kind[:34]:34s} {p.base_codes} -> {p.other_codes}")


if __name__ == "__main__":
    main()
