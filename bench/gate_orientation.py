"""Does the gate's answer depend on which way the photo is turned? (issue 12: judged again on photos we do not have)

    .venv/bin/python bench/gate_orientation.py --part selection report      # good ACNE04 photos
    .venv/bin/python bench/gate_orientation.py --sets nonskin real         # non-skin images (both roles)

A phone sends the same skin mirrored (a front camera's selfie), turned a quarter (EXIF ignored by some app) or upside
down; the verdict should not change. Each good photo of the part, and each generated or real non-skin image of the set
(`gate_measure.set_images`, the images the cached measures come from), is judged as it is and under each turn; printed
per turn: good photos refused (with a 95% interval by photo) and the verdicts that changed, by code
(`gate_capture.judge_part`), or non-skin images accepted and which. The gate's hand measures and logistic models do not move under a mirror; its three networks do
(docs/quality_gate.md, "A mirror image, read as the same photo"). Protocol: evaluation only, nothing is chosen here;
`selection` is the part of `valid` thresholds were chosen on, `report` the part no choice read, `holdout` the `train`
photos outside the gate's fit sample (`--limit` of them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from rich.progress import track

from bench import gate_capture as capture
from bench import gate_data as gd
from bench.gate_measure import set_images
from quality_gate import assess

TURNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as is": lambda image: image,
    "mirrored": gd.mirror,
    "turned a quarter": gd.turned(1),
    "upside down": gd.turned(2),
}


def judge_turns(images: list[tuple[str, np.ndarray]]) -> dict[str, dict[str, bool]]:
    """turn -> image name -> accepted."""
    accepted: dict[str, dict[str, bool]] = {turn: {} for turn in TURNS}
    for name, image in images:
        for turn, change in TURNS.items():
            accepted[turn][name] = assess(change(image)).accepted
    return accepted


def good_photos(part: str, limit: int) -> None:
    """The good photos of the part as they are and turned, by the capture bench's judge (`gate_capture.judge_part`)."""
    capture.judge_part(part, limit, {turn: change for turn, change in TURNS.items() if turn != "as is"})


def non_skin(set_: str) -> None:
    rows = list(track(set_images(set_), description=f"{set_}: images"))
    for part in dict.fromkeys(row[1] for row in rows):
        # keyed by position: a real photo's views share its name
        accepted = judge_turns([(f"{k}:{row[2]}", row[5]) for k, row in enumerate(rows) if row[1] == part])
        print(f"\n{set_}, {part}: non-skin images accepted ({len(accepted['as is'])})")
        for turn, verdicts in accepted.items():
            names = sorted(name.rsplit("/", 1)[-1][:32] for name, ok in verdicts.items() if ok)
            print(f"  {turn:18s} {len(names):4d}  {' '.join(names)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="*", default=[], choices=["selection", "report", "holdout"])
    parser.add_argument("--sets", nargs="*", default=[], choices=["nonskin", "real"])
    parser.add_argument("--limit", type=int, default=1000, help="holdout photos (--part holdout)")
    args = parser.parse_args()
    for part in args.part:
        good_photos(part, args.limit)
    for set_ in args.sets:
        non_skin(set_)


if __name__ == "__main__":
    main()
