"""Do the grid's lighting faults reach the lesions? Each lighting row's catch, split by how much of the labelled
lesions the fault darkens (issue 12; evaluation only: nothing in the gate is chosen on it).

    .venv/bin/python bench/lighting_reach.py --measures var/gate/m-valid.json var/gate/m-holdout.json \
        [--plot docs/figures/lighting_reach.png] [--markdown]

The grid places each lighting fault across the frame, or across the box around the labelled lesions widened to at
least half the frame (`gate_data.lesion_box`), in a direction that turns with the photo (`gate_measure.grid_direction`).
Toward a corner (45 and 225 degrees) a cast shadow over 30-60% of the box's diagonal darkens a corner triangle of it,
often hair, a chin or the room, and the lesions themselves can stay lit: a photo a dermatologist could use.

`reach`: the share of the labelled lesions' area (the union of their boxes) that the fault darkens by at least
`REACH_STOPS`, read by putting a flat grey image of the photo's size through the same degradation (same photo index,
same box). A copy *reaches the lesions* when reach >= `REACH_SHARE`. Both were fixed before any count (session 21's
rules, 2026-11-28) and are not tuned. Photos without a label are left out. The catch is `calibrate_quality_gate`'s
(refused with the expected code), replayed from cached measures with the shipped gate; shares with 95% Wilson
intervals (one row per photo and fault, so rows are independent within a fault).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.calibrate_quality_gate import caught, render, replay
from bench.gate_measure import VALID_GRID, degrade, grid_photos, load_rgb
from bench.intervals import wilson
from quality_gate.policy import Thresholds

REACH_STOPS = 1.0  # a lesion pixel counts as reached when the fault takes at least this much of its light
REACH_SHARE = 0.5  # a copy reaches the lesions when at least this share of their area is reached
GREY = 200  # sRGB level of the flat image the fault is read on: 6 stops down still sits well above 0
LIGHTING_KINDS = tuple(name for name, (_, code) in VALID_GRID.items() if code == "uneven_lighting")
PARTS = ("selection", "report", "holdout", "report+holdout")


def grey_frame(shape: tuple[int, int]) -> np.ndarray:
    """The flat image a fault is read on (`stops_taken`)."""
    return np.full((*shape, 3), GREY, np.uint8)


def stops_taken(after: np.ndarray) -> np.ndarray:
    """Stops of light a lighting change took from each pixel (<= 0), from what it made of `grey_frame`."""
    return np.log2(np.maximum(gd.srgb_to_linear(after[..., 0]), 1e-6) / gd.srgb_to_linear(np.uint8(GREY)))


def reached_share(lesions: np.ndarray, taken: np.ndarray) -> float:
    """Share of the `lesions` mask that lost at least `REACH_STOPS` (`taken`: `stops_taken`)."""
    return float(np.count_nonzero(lesions & (taken <= -REACH_STOPS)) / max(np.count_nonzero(lesions), 1))


def darkening(kind: str, shape: tuple[int, int], index: int, box: gd.Box | None) -> np.ndarray:
    """Stops of light the grid fault `kind` takes from each pixel (<= 0) of a photo of `shape` at grid `index`."""
    return stops_taken(degrade(kind, grey_frame(shape), index, box))


def lesion_mask(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The union of YOLO boxes (rows class, cx, cy, w, h; shares of the frame) as a boolean mask of `shape`."""
    height, width = shape
    mask = np.zeros(shape, bool)
    for _, cx, cy, bw, bh in boxes:
        x0, x1 = round(float(cx - bw / 2) * width), round(float(cx + bw / 2) * width)
        y0, y1 = round(float(cy - bh / 2) * height), round(float(cy + bh / 2) * height)
        mask[max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)] = True
    return mask


def reaches(kinds: Iterable[str], shape: tuple[int, int], index: int, label_file: Path) -> dict[str, float] | None:
    """kind -> share of the labelled lesions' area the fault darkens by `REACH_STOPS` or more, for a photo of `shape` at
    grid `index` (its label read once for every kind); None without a label."""
    boxes = gd.lesion_boxes(label_file)
    if not len(boxes):
        return None
    lesions, box = lesion_mask(boxes, shape), gd.lesion_box(label_file)
    return {kind: reached_share(lesions, darkening(kind, shape, index, box)) for kind in kinds}


def photo_reaches(sets: Iterable[str]) -> dict[tuple[str, str, str], float]:
    """(set, photo, kind) -> reach, for every lighting row of the grid sets named."""
    out: dict[tuple[str, str, str], float] = {}
    for set_ in sets:
        for index, path in enumerate(track(grid_photos(set_), description=f"{set_}: reach of the lighting faults")):
            shape = load_rgb(path).shape[:2]  # decoded as the grid decodes it (orientation included)
            for kind, value in (reaches(LIGHTING_KINDS, shape, index, gd.label_file(path)) or {}).items():
                out[(set_, path.name, kind)] = value
    return out


Outcome = tuple[float, bool]  # (reach, caught)


def outcomes(rows: list[dict], reaches: dict[tuple[str, str, str], float]) -> dict[str, dict[str, list[Outcome]]]:
    """kind -> part -> (reach, caught) of each lighting row with a reach, replayed through the shipped gate."""
    rows = [row for row in rows if (row["set"], row["photo"], row["kind"]) in reaches]
    out: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for row, report in zip(rows, replay(rows, Thresholds()), strict=True):
        value = (reaches[(row["set"], row["photo"], row["kind"])], caught(row, report))
        out[row["kind"]][row["part"]].append(value)
        if row["part"] in ("report", "holdout"):
            out[row["kind"]]["report+holdout"].append(value)
    return out


def cell(hits: list[bool]) -> str:
    """`caught% [95% interval] (n)`; "-" without rows."""
    if not hits:
        return "-"
    low, high = wilson(sum(hits), len(hits))
    return f"{100 * sum(hits) / len(hits):.1f} [{100 * low:.0f}-{100 * high:.0f}] ({len(hits)})"


def reach_table(results: dict[str, dict[str, list[Outcome]]]) -> list[list[str]]:
    table = [["fault", "part", "caught, all copies", "reaching the lesions", "the rest", "reach, median"]]
    for kind in LIGHTING_KINDS:
        for part in PARTS:
            pairs = results.get(kind, {}).get(part, [])
            if not pairs:
                continue
            reached = [hit for value, hit in pairs if value >= REACH_SHARE]
            rest = [hit for value, hit in pairs if value < REACH_SHARE]
            median = f"{np.median([value for value, _ in pairs]):.2f}"
            table.append([kind, part, cell([hit for _, hit in pairs]), cell(reached), cell(rest), median])
    return table


def reach_plot(results: dict[str, dict[str, list[Outcome]]], path: Path, part: str = "report+holdout") -> Path:
    """Caught share against reach (five bins), one line per fault, frame-placed and lesion-placed side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figures import save_figure

    edges = np.linspace(0.0, 1.0, 6)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, placed in zip(axes, ("frame", "lesions"), strict=True):
        for kind in LIGHTING_KINDS:
            if kind.startswith("lesion ") != (placed == "lesions"):
                continue
            pairs = results.get(kind, {}).get(part, [])
            xs, ys = [], []
            for low, high in itertools.pairwise(edges):
                hits = [hit for value, hit in pairs if low <= value < high or (high == 1.0 and value == 1.0)]
                if len(hits) >= 5:
                    xs.append((low + high) / 2)
                    ys.append(100 * sum(hits) / len(hits))
            ax.plot(xs, ys, marker="o", label=kind.removeprefix("lesion "))
        ax.axvline(REACH_SHARE, color="grey", linestyle=":")
        ax.axhline(98, color="red", linewidth=0.8)
        ax.set(
            title=f"placed on the {placed} ({part})", xlabel=f"share of the lesions darkened >= {REACH_STOPS:g} stop"
        )
        ax.legend(fontsize=7)
    axes[0].set_ylabel("caught as uneven_lighting, % (bins of >= 5 copies)")
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--measures", type=Path, nargs="+", required=True, help="gate_measure.py caches (valid, holdout)"
    )
    parser.add_argument("--plot", type=Path, help="write the catch-against-reach figure here")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [row for path in args.measures for row in json.loads(path.read_text())]
    rows = [row for row in rows if row["set"] in ("valid", "holdout") and row["kind"] in LIGHTING_KINDS]
    results = outcomes(rows, photo_reaches(sorted({row["set"] for row in rows})))
    print(render(reach_table(results), args.markdown))
    if args.plot:
        reach_plot(results, args.plot)


if __name__ == "__main__":
    main()
