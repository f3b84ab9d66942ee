"""Does the quality gate give an enlarged photo the answer it gives the photo itself? (issue 12, phone-size photos)

    .venv/bin/python bench/gate_enlarged.py --part selection     # or report, or fit (the gate's fit sample)

Each ACNE04 photo (640 px) is enlarged 1.5x, 2x, 3x and to 4032 px wide (INTER_CUBIC: no detail is added),
stored as a phone would send it (JPEG q92) and decoded as the service decodes it (`decode_stored` at
`ANALYSIS_LONG_SIDE`: 960, 1280, 960 and 1008 px wide), then judged with the photo's own size as `photo_size`.
`--decode-side 2016` decodes at least that wide instead, as the service does when the skin is small in the frame
(a 4032 px photo at 1/2: the working copy's 2-4x path).
Printed per factor: the photos whose verdict differs from the 640 px photo's, refused or accepted, and by which
codes; and those refused both times with other codes. Protocol: `--part selection` is the part of `valid` thresholds were chosen on, `report` the part no choice
read, `fit` the first `--limit` photos of the gate's fit sample (in-sample for the learned verdict).

    .venv/bin/python bench/gate_enlarged.py --part selection --faults      # or report, holdout

`--faults` asks the same of degraded photos: each photo through issue 12's bar faults of the grid
(`gate_measure.degrade`, each fault's direction as the grid gives it to that photo), judged as the 640 px copy and
as that copy sent at phone size (`--factor`, 4032 px wide by default, the same store and decode). Printed per fault:
caught at 640 px and at phone size, and the copies caught at one size only.
"""

from __future__ import annotations

import argparse
import collections

import cv2
import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.calibrate_quality_gate import caught
from bench.gate_measure import VALID_GRID, degrade, grid_photos, load_rgb, part_photos
from pipelines.cases.analysis import ANALYSIS_LONG_SIDE
from pipelines.cases.photos import decode_stored
from quality_gate import QualityReport, assess

FACTORS = (1.5, 2.0, 3.0, 4032 / 640)
# issue 12's bar rows of the grid, and the photo as it is (a false reject at one size and not the other counts too)
BAR_FAULTS = (
    "good",
    "darker 2 stops",
    "brighter 2 stops",
    "gaussian blur s=2",
    "motion blur 12 px",
    "lesion side light 4 stops",
    "lesion cast shadow 3 stops",
    "side light 4 stops",
    "cast shadow 3 stops",
)


def as_sent(rgb: np.ndarray, factor: float, decode_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """`rgb` enlarged by `factor` (INTER_CUBIC), stored as a phone sends it (JPEG q92) and decoded as the service
    decodes it: the pixels the gate reads, and the stored photo's size (W, H) for `photo_size`."""
    size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
    enlarged = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_CUBIC)
    jpeg = cv2.imencode(".jpg", enlarged, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
    return decode_stored(jpeg, min_long_side=decode_side).rgb, size


def fault_hit(fault: str, report: QualityReport) -> bool:
    """A fault copy caught with its code (as `calibrate_quality_gate.caught` counts it); the photo as it is refused."""
    code = VALID_GRID[fault][1]
    return not report.accepted if code is None else caught({"label": code}, report)


def judge_faults(part: str, limit: int, faults: tuple[str, ...], factor: float, decode_side: int) -> None:
    photos = part_photos(part, limit)
    order = {p.name: i for i, p in enumerate(grid_photos("valid" if part in ("selection", "report") else "holdout"))}
    hits = {fault: collections.Counter() for fault in faults}
    for position, path in enumerate(track(photos, description=f"{part}: photos x {len(faults)} faults x 2 sizes")):
        image = load_rgb(path)
        box = gd.lesion_box(gd.label_file(path))
        index = order.get(path.name, position)  # the fit sample is in no grid: its own order
        for fault in faults:
            copy = degrade(fault, image, index, box)
            at_640 = fault_hit(fault, assess(copy))
            pixels, size = as_sent(copy, factor, decode_side)
            at_phone = fault_hit(fault, assess(pixels, photo_size=size))
            hits[fault].update({"640": at_640, "phone": at_phone, "640 only": at_640 and not at_phone})
            hits[fault]["phone only"] += at_phone and not at_640
    n = len(photos)
    print(f"{part}: {n} photos; phone size {round(640 * factor)} px wide, decoded at >= {decode_side} px")
    print(f"  {'fault':28s} {'640 px %':>9s} {'phone %':>8s}  caught at 640 only / at phone size only")
    for fault in faults:
        h = hits[fault]
        word = "refused" if VALID_GRID[fault][1] is None else "caught"
        print(
            f"  {fault:28s} {100 * h['640'] / n:9.1f} {100 * h['phone'] / n:8.1f}  "
            f"{h['640 only']} / {h['phone only']} ({word})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--part", choices=("selection", "report", "fit", "holdout"), default="selection")
    parser.add_argument(
        "--limit", type=int, default=250, help="photos of the fit sample or holdout (--part fit, holdout)"
    )
    parser.add_argument("--decode-side", type=int, default=ANALYSIS_LONG_SIDE, help="decode at least this wide")
    parser.add_argument("--faults", nargs="*", choices=BAR_FAULTS, help=f"degraded copies (none named: {BAR_FAULTS})")
    parser.add_argument("--factor", type=float, default=4032 / 640, help="enlargement of the degraded copies")
    args = parser.parse_args()
    if args.faults is not None:
        judge_faults(args.part, args.limit, tuple(args.faults) or BAR_FAULTS, args.factor, args.decode_side)
        return
    photos = part_photos(args.part, args.limit)
    refused_at_640 = 0
    flips: dict[float, collections.Counter] = {factor: collections.Counter() for factor in FACTORS}
    recoded: collections.Counter = collections.Counter()
    decoded: dict[float, str] = {}
    for path in track(photos, description=f"{args.part}: photos x {len(FACTORS)} sizes"):
        rgb = load_rgb(path)
        reference = assess(rgb)
        refused_at_640 += not reference.accepted
        for factor in FACTORS:
            pixels, size = as_sent(rgb, factor, args.decode_side)
            decoded[factor] = f"{pixels.shape[1]}x{pixels.shape[0]}"
            report = assess(pixels, photo_size=size)
            if report.accepted != reference.accepted:
                verdict = "accepted" if report.accepted else "refused " + "+".join(report.retake_codes)
                flips[factor][verdict] += 1
            elif report.retake_codes != reference.retake_codes:  # refused both times, for other reasons
                recoded[factor] += 1
    print(f"{args.part}: {len(photos)} photos, {refused_at_640} refused at 640 px")
    for factor in FACTORS:
        changed = sum(flips[factor].values())
        detail = ", ".join(f"{verdict} {count}" for verdict, count in flips[factor].most_common()) or "-"
        print(
            f"  x{factor:.2f} (decoded at {decoded.get(factor, '?')}): verdict differs on {changed} "
            f"({changed / max(len(photos), 1):.1%}): {detail}; refused both times with other codes: {recoded[factor]}"
        )


if __name__ == "__main__":
    main()
