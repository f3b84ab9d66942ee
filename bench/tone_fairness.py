"""Is the gate fair to every skin tone, with copies whose skin could be real? (issue 12: false rejects by skin tone)

    nice .venv/bin/python bench/tone_fairness.py --part selection [report holdout] [--processes 2]
    .venv/bin/python bench/tone_fairness.py --part selection report holdout --plot docs/figures/tone_fairness.png

The grid of `bench/gate_measure.py` shifts skin tone along CIELAB L* and b* (`gate_data.tone_shift`), with a* kept:
its darker copies are redder than their lightness allows, and far darker than the scale's darkest group needs (on
selection, "tone L-40 b+8" puts the skin at median L* 14.6 and ITA -66, where the "dark" group starts at -30). Those
copies fill the darker ITA groups of the false-reject table. Here each good photo's skin is given more pigment until
its ITA reaches a target (19: tan, -10: brown, -40: dark; only targets at least 5 degrees below the photo's own), or
less until it reaches 60 (very light; photos at 55 or below), in linear light (`gate_data.melanin_shift`), under
two colour assumptions that bracket real skin: `neutral` (chromaticity kept) and `melanin` (melanin's absorbance at
the primaries' wavelengths; a camera's broad channels flatten it). Each copy is judged as recorded at the photo's
exposure and `metered` (the frame's mean light brought back, as average-metering auto-exposure answers a darker or
lighter subject). Printed per copy family: share refused, the codes, and the copies' median skin L*, a*, b* and ITA
(the gate's skin mask), beside the photos as they are and the grid's tone_shift copies.

Protocol: evaluation only (no threshold or model is chosen on these rows). `selection` is the part of `valid`
thresholds were chosen on; `report` the part no choice read; `holdout` the `train` photos outside the gate's fit
sample (`--limit` of them).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import multiprocessing
from pathlib import Path

import numpy as np
from rich.progress import track

from bench import gate_capture as capture
from bench import gate_data as gd
from bench.gate_measure import load_rgb, part_photos
from bench.intervals import share_cell
from quality_gate import assess

TARGETS = {60.0: "very light", 19.0: "tan", -10.0: "brown", -40.0: "dark"}
LIGHTER = frozenset({60.0})  # targets made by taking pigment away (the others by adding it)
BRACKETS = {"neutral": gd.NEUTRAL_DENSITY, "melanin": gd.MELANIN_DENSITY}
MARGIN = 5.0  # degrees of ITA a target must lie beyond the photo's own (below it, or above it for the lighter one)


def families() -> list[str]:
    """Every copy family, in print order."""
    names = ["as is", *gd.TONE_SHIFTS]
    for bracket in BRACKETS:
        for metered in (False, True):
            names += [_name(bracket, target, metered) for target in TARGETS]
    return names


def _name(bracket: str, target: float, metered: bool) -> str:
    return f"{bracket} ITA {target:+.0f} ({TARGETS[target]}){', metered' if metered else ''}"


def copies_of(image: np.ndarray, wanted: set[str]) -> dict[str, np.ndarray]:
    """The photo's copies of the `wanted` families: a pigment target only when it lies `MARGIN` beyond the photo's own
    ITA (darker, or lighter for `LIGHTER` targets) and within the pigment's reach."""
    copies = {"as is": image} if "as is" in wanted else {}
    copies |= {name: gd.tone_shift(*shift)(image) for name, shift in gd.TONE_SHIFTS.items() if name in wanted}
    own = gd.ita(image)
    for bracket, spectrum in BRACKETS.items():
        for metered in (False, True):
            for target in TARGETS:
                name = _name(bracket, target, metered)
                beyond = own <= target - MARGIN if target in LIGHTER else own >= target + MARGIN
                if name in wanted and beyond:
                    with contextlib.suppress(ValueError):  # out of this pigment's reach: no copy
                        copies[name] = gd.melanin_shift(target, spectrum, metered)(image)
    return copies


def judge_photo(path: str, wanted: frozenset[str] = frozenset(families())) -> list[dict]:
    """One row per copy of the photo (of the `wanted` families): family, refused, verdict, skin L*, a*, b*, ITA."""
    image = load_rgb(Path(path))
    rows = []
    for family, copy in copies_of(image, set(wanted)).items():
        report = assess(copy)
        lightness, red_green, yellow = gd.skin_lab(copy)
        rows.append(
            {
                "photo": Path(path).name,
                "family": family,
                "refused": not report.accepted,
                "verdict": capture.verdict_label(report),
                "L": lightness,
                "a": red_green,
                "b": yellow,
                "ita": gd.ita_angle(lightness, yellow),
            }
        )
    return rows


def judge_part(part: str, limit: int, processes: int, wanted: frozenset[str]) -> list[dict]:
    photos = [str(p) for p in part_photos(part, limit)]
    with multiprocessing.Pool(processes) as pool:
        jobs = pool.imap(functools.partial(judge_photo, wanted=wanted), photos)
        per_photo = list(track(jobs, total=len(photos), description=f"{part}: photos x tone copies"))
    return [row for rows in per_photo for row in rows]


def summary(rows: list[dict]) -> dict[str, dict]:
    """Per family: copies, share refused, codes of the refusals, median skin L*, a*, b*, ITA."""
    out = {}
    for family in families():
        mine = [r for r in rows if r["family"] == family]
        if not mine:
            continue
        codes = collections.Counter(r["verdict"].removeprefix("refused ") for r in mine if r["refused"])
        out[family] = {
            "copies": len(mine),
            "refused": float(np.mean([r["refused"] for r in mine])),
            "codes": dict(codes.most_common()),
            **{k: float(np.nanmedian([r[k] for r in mine])) for k in ("L", "a", "b", "ita")},
        }
    return out


def print_summary(part: str, table: dict[str, dict]) -> None:
    print(f"\n{part}")
    print(f"{'copies':52s} {'n':>4s} {'refused':>8s} {'L*':>5s} {'a*':>5s} {'b*':>5s} {'ITA':>5s}  codes")
    for family, s in table.items():
        codes = ", ".join(f"{code} {n}" for code, n in s["codes"].items()) or "-"
        print(
            f"{family:52s} {s['copies']:4d} {100 * s['refused']:7.1f}% {s['L']:5.1f} {s['a']:5.1f} {s['b']:5.1f} "
            f"{s['ita']:5.0f}  {codes}"
        )


def pooled_table(rows_by_part: dict[str, list[dict]], parts: tuple[str, ...] = ("report", "holdout")) -> list[str]:
    """Per family, the share refused over `parts` pooled (no choice read them) with its 95% interval (one copy per
    photo and family: Wilson), lines to print: whether two families differ by more than their photos can tell."""
    lines = [f"{'copies':52s} {'n':>4s}  refused % [95%]"]
    pooled = [row for part in parts for row in rows_by_part.get(part, [])]
    for family in families():
        refused = {f"{row['photo']}/{k}": [row["refused"]] for k, row in enumerate(pooled) if row["family"] == family}
        if refused:
            lines.append(f"{family:52s} {len(refused):4d}  {share_cell(refused)}")
    return lines


def plot(tables: dict[str, dict[str, dict]], path: Path) -> None:
    """Bars of the share refused per copy family (with its copies' skin L*), one colour per part."""
    names = [f for f in families() if all(f in t for t in tables.values())]
    shares = {part: {name: table[name]["refused"] for name in names} for part, table in tables.items()}
    first = next(iter(tables.values()))
    labels = [f"{name}\nL* {first[name]['L']:.0f}" for name in names]
    title = "The gate on good photos at other skin tones (bench/tone_fairness.py; red: the 2% target)"
    capture.plot(shares, path, title, labels, target=0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=("selection", "report", "holdout"), default=["selection"])
    parser.add_argument("--limit", type=int, default=500, help="holdout photos (--part holdout)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("var/gate/tone"),
        help="rows per part and gate (`gate_data.gate_fingerprint`): families already there are reused",
    )
    parser.add_argument("--plot", type=Path, help="bars of the share refused per copy family and part (PNG)")
    args = parser.parse_args()
    tables, rows_by_part = {}, {}
    gate = gd.gate_fingerprint()  # rows judged by another gate (code, models, thresholds) are not reused
    for part in args.part:
        cached = args.cache / gate / f"{part}.json"
        rows = json.loads(cached.read_text()) if cached.is_file() else []
        missing = frozenset(families()) - {row["family"] for row in rows}
        if missing:  # a family added since the rows were cached (a family no photo could make is tried again)
            rows += judge_part(part, args.limit, args.processes, missing)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(rows))
        tables[part], rows_by_part[part] = summary(rows), rows
        print_summary(part, tables[part])
    if {"report", "holdout"} <= set(args.part):
        print("\nreport and holdout pooled (no choice read either)")
        print("\n".join(pooled_table(rows_by_part)))
    if args.plot:
        plot(tables, args.plot)


if __name__ == "__main__":
    main()
