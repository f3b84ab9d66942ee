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
"""

from __future__ import annotations

import argparse
import collections

import cv2
from rich.progress import track

from bench.gate_measure import part_photos
from pipelines.cases.analysis import ANALYSIS_LONG_SIDE
from pipelines.cases.photos import decode_stored
from quality_gate import assess

FACTORS = (1.5, 2.0, 3.0, 4032 / 640)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--part", choices=("selection", "report", "fit"), default="selection")
    parser.add_argument("--limit", type=int, default=250, help="photos of the fit sample (--part fit)")
    parser.add_argument("--decode-side", type=int, default=ANALYSIS_LONG_SIDE, help="decode at least this wide")
    args = parser.parse_args()
    photos = part_photos(args.part, args.limit)
    refused_at_640 = 0
    flips: dict[float, collections.Counter] = {factor: collections.Counter() for factor in FACTORS}
    recoded: collections.Counter = collections.Counter()
    decoded: dict[float, str] = {}
    for path in track(photos, description=f"{args.part}: photos x {len(FACTORS)} sizes"):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        reference = assess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        refused_at_640 += not reference.accepted
        for factor in FACTORS:
            size = (round(bgr.shape[1] * factor), round(bgr.shape[0] * factor))
            enlarged = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
            jpeg = cv2.imencode(".jpg", enlarged, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
            pixels = decode_stored(jpeg, min_long_side=args.decode_side)
            decoded[factor] = f"{pixels.rgb.shape[1]}x{pixels.rgb.shape[0]}"
            report = assess(pixels.rgb, photo_size=size)
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
