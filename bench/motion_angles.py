"""Is motion blur caught in every direction? Every photo of a part, smeared at each angle (issue 12: "motion blur
>= 12 px in any direction").

    .venv/bin/python bench/motion_angles.py --part selection --length 12 --angles 0 15 30 45 75 90 105 165
    .venv/bin/python bench/motion_angles.py --part selection --kernel rounded     # the smear drawn before 2026-11-29
    .venv/bin/python bench/motion_angles.py --part report holdout                 # and the two pooled
    .venv/bin/python bench/motion_angles.py --part report holdout --length 12 14 16 \
        --plot docs/figures/motion_lengths.png                                    # how far past 12 px

The grid (`bench/gate_measure.py`) gives each photo one direction, so a part holds 8-15 photos per direction; this
smears every photo at every angle, so the directions are compared on the same photos. `--kernel exact` is
`gate_data.motion_kernel` (a smear `--length` px long at every angle); `rounded` is the drawing it replaced, endpoints
rounded to whole pixels (13 px long at 0 and 90 degrees for 12, ~10 px at 15, 75, 105 and 165), kept here to show
what the change did. Caught: as `calibrate_quality_gate.caught` counts a motion row (`motion_blur` or `blurry`); each
share with its 95% interval clustered by photo (`bench/intervals.py`: a photo's twelve smears are not twelve photos).
Protocol: `selection` is the part thresholds were chosen on; `report` and `holdout` are read once, after a choice.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.calibrate_quality_gate import caught as caught_as
from bench.figures import save_figure
from bench.gate_measure import load_rgb, part_photos
from bench.intervals import share_cell
from quality_gate import assess


def rounded_kernel(length: int, angle: float) -> np.ndarray:
    """The smear `gate_data.motion_kernel` drew before 2026-11-29: an antialiased line between whole-pixel ends."""
    return gd.whole_pixel_kernel(length, angle, cv2.LINE_AA)


def catch_by_angle(
    part: str, limit: int, length: int, angles: list[float], kernel: str
) -> dict[float, dict[str, list[bool]]]:
    """angle -> photo -> [caught or not] for each photo of the part (one-element lists: the clusters of `share_cell`)."""
    smears = {
        angle: gd.smear(gd.motion_kernel(length, angle) if kernel == "exact" else rounded_kernel(length, angle))
        for angle in angles
    }
    row = {"label": "motion_blur"}
    caught: dict[float, dict[str, list[bool]]] = collections.defaultdict(dict)
    for path in track(part_photos(part, limit), description=f"{part}: photos x {len(angles)} angles"):
        rgb = load_rgb(path)
        for angle, smear in smears.items():
            caught[angle][f"{part}/{path.name}"] = [caught_as(row, assess(smear(rgb)))]
    return caught


def by_photo(caught: dict[float, dict[str, list[bool]]]) -> dict[str, list[bool]]:
    """photo -> its outcome at every angle: the clusters of the share over all angles."""
    photos: dict[str, list[bool]] = collections.defaultdict(list)
    for outcomes in caught.values():
        for photo, hits in outcomes.items():
            photos[photo].extend(hits)
    return photos


def hits_at(outcomes: dict[str, list[bool]]) -> list[bool]:
    """Every photo's outcome at one angle, in one list."""
    return [hit for hits in outcomes.values() for hit in hits]


def misses_by_photo(photos: dict[str, list[bool]]) -> list[int]:
    """How many smears each photo with a miss lets through, most first: are the misses a few photos' or everyone's?"""
    return sorted((hits.count(False) for hits in photos.values() if not all(hits)), reverse=True)


def report(name: str, caught: dict[float, dict[str, list[bool]]], length: int, kernel: str) -> None:
    photos = by_photo(caught)
    rows = sum(len(hits) for hits in photos.values())
    print(f"{name}, motion blur {length} px, {kernel} smear, {len(photos)} photos x {len(caught)} angles ({rows}):")
    print(f"  caught {share_cell(photos)} %")
    misses = misses_by_photo(photos)
    print(f"  missed {sum(misses)} smears of {len(misses)} photos; misses per such photo: {misses}")
    for angle, outcomes in caught.items():
        hits = hits_at(outcomes)
        print(f"  {angle:5.1f} degrees: {sum(hits)} of {len(hits)} ({np.mean(hits):.1%})")


def plot(by_length: dict[int, dict[float, dict[str, list[bool]]]], name: str, path: Path) -> None:
    """Catch by direction, a line per smear length, the pooled share and its interval in the legend: where in the
    circle and how far past the bar's length the misses sit."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for length, caught in by_length.items():
        angles = list(caught)
        rates = [100 * np.mean(hits_at(caught[a])) for a in angles]
        ax.plot(angles, rates, marker="o", label=f"{length} px: {share_cell(by_photo(caught))} %")
    ax.axhline(98.0, color="red", lw=1, ls="--", label="the bar (98%)")
    ax.set(
        xlabel="direction of the smear (degrees)", ylabel="caught (%)", title=f"Motion blur in every direction: {name}"
    )
    ax.set_xticks(list(next(iter(by_length.values()))))
    ax.set_ylim(top=100.5)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)  # below: clear of the lines
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=("selection", "report", "holdout"), default=["selection"])
    parser.add_argument("--limit", type=int, default=500, help="holdout photos (--part holdout)")
    parser.add_argument("--length", type=int, nargs="+", default=[12], help="px of smear (several: each in turn)")
    parser.add_argument("--angles", type=float, nargs="+", default=[15.0 * k for k in range(12)])
    parser.add_argument("--kernel", choices=("exact", "rounded"), default="exact")
    parser.add_argument("--plot", type=Path, help="draw the catch by direction of the parts pooled, a line per length")
    args = parser.parse_args()
    name = " + ".join(args.part)
    by_length: dict[int, dict[float, dict[str, list[bool]]]] = {}
    for length in args.length:
        pooled: dict[float, dict[str, list[bool]]] = collections.defaultdict(dict)
        for part in args.part:
            caught = catch_by_angle(part, args.limit, length, args.angles, args.kernel)
            report(part, caught, length, args.kernel)
            for angle, outcomes in caught.items():
                pooled[angle].update(outcomes)
        if len(args.part) > 1:
            report(name, pooled, length, args.kernel)
        by_length[length] = pooled
    if args.plot:
        plot(by_length, name, args.plot)


if __name__ == "__main__":
    main()
