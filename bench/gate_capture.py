"""Does the gate keep a good photo when a phone records it differently? (issue 12: false rejects on real captures)

    .venv/bin/python bench/gate_capture.py --part selection     # or report, or holdout (several: one after another)
    .venv/bin/python bench/gate_capture.py --part selection report holdout --plot docs/figures/gate_capture.png

The grid of `bench/gate_measure.py` shifts exposure and skin tone; a phone also changes the white balance (warm
tungsten or cool shade), adds sensor noise, sharpens, compresses harder, lifts shadows with its tone curve, leaves
some lens vignetting, turns and mirrors the frame, crops to its own aspect ratio, and records wide-gamut colour (Display P3, tagged in the JPEG:
read through the profile as the service does, and, for comparison, read as sRGB by software blind to profiles); and
a user may send a screenshot of the photo instead, letterboxed in the viewer's black or white frame. None of these
makes a photo useless to a dermatologist, so each should leave the verdict as it was. Each ACNE04 `valid` photo of the part is judged as it
is and through each variant; printed per variant: refused as is / refused after, the photos whose verdict changed
and by which codes; an `uneven_lighting` refusal says which part of the gate raised it (`[network]`: the lighting
CNN's logit, `[trees]`: the learned verdict over the light measures, `[both]`, or `[floor]`: a hand threshold), since
the network and the trees answer to different fixes. Protocol: `selection` is the part of `valid` thresholds were chosen on, `report` the part no
choice read, `holdout` the `train` photos outside the gate's fit sample (`--limit` of them; no fit read them).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from bench import gate_data as gd
from bench.figures import save_figure
from bench.gate_measure import part_photos
from bench.intervals import share_cell
from pipelines.cases.photos import decode_stored
from quality_gate import QualityReport, Thresholds, assess, verdict


def display_p3_served(image: np.ndarray) -> np.ndarray:
    """What the service analyses when an iPhone sends this scene: Display P3 values in a JPEG (q95) that carries the
    profile, decoded by `pipelines.cases.photos.decode_stored`, which applies it."""
    jpeg = gd.tagged_jpeg(gd.as_display_p3(image), gd.display_p3_profile())
    return decode_stored(jpeg, min_long_side=max(image.shape[:2])).rgb


VARIANTS: dict[str, gd.Degradation] = {
    **{name: gd.white_balance(*gains) for name, gains in gd.WHITE_BALANCES.items()},
    "sensor noise sigma 4 + JPEG q85": gd.noise_and_jpeg(4, 85),
    "JPEG q50": lambda image: gd.jpeg(image, 50),
    "sharpened (unsharp 0.8)": gd.sharpen(0.8),
    "shadows lifted (tone curve)": gd.shadow_lift(0.25),
    "vignetting, 0.5 stop at the corners": gd.vignette(0.5),
    "turned 90 degrees": gd.turned(1),
    "mirrored": gd.mirror,
    "cropped to 3:4": gd.aspect_crop(3 / 4),
    "cropped to 9:16": gd.aspect_crop(9 / 16),
    "JPEG q95": lambda image: gd.jpeg(image, 95),
    "screenshot in a dark viewer (black frame)": gd.then(gd.screenshot(0), lambda image: gd.jpeg(image, 90)),
    "screenshot in a light viewer (white frame)": gd.then(gd.screenshot(255), lambda image: gd.jpeg(image, 90)),
    "Display P3, read as sRGB (no colour management)": gd.as_display_p3,
    "Display P3, read through its profile (as the service does)": display_p3_served,
}


def lighting_source(report: QualityReport, thresholds: Thresholds | None = None) -> str:
    """Which part of the gate raised `uneven_lighting` on this report: network, trees, both or floor."""
    t = thresholds or Thresholds()
    network = report.measures["lighting_logit"] > t.max_lighting_logit + t.learned_offset
    trees = t.lighting_trees and verdict.logits(report.measures)["uneven_lighting"] > t.learned_offset
    return {(True, True): "both", (True, False): "network", (False, True): "trees"}.get((network, trees), "floor")


def verdict_label(report: QualityReport, thresholds: Thresholds | None = None) -> str:
    """'accepted', or 'refused' and the codes, the uneven_lighting one with its source."""
    if report.accepted:
        return "accepted"
    codes = [
        f"{c}[{lighting_source(report, thresholds)}]" if c == "uneven_lighting" else c for c in report.retake_codes
    ]
    return "refused " + "+".join(codes)


def judge_part(
    part: str, limit: int, variants: dict[str, gd.Degradation] | None = None, thresholds: Thresholds | None = None
) -> dict[str, float]:
    """Share refused as is and after each change, for one part; prints the verdicts that changed, by code."""
    variants = VARIANTS if variants is None else variants
    thresholds = thresholds or Thresholds()
    photos = part_photos(part, limit)
    refused_as_is = 0
    refused: collections.Counter = collections.Counter()
    # refused, per photo: the intervals
    outcomes: dict[str, dict[str, list[bool]]] = {name: {} for name in ["as they are", *variants]}
    flips: dict[str, collections.Counter] = {name: collections.Counter() for name in variants}
    for path in track(photos, description=f"{part}: photos x {len(variants)} variants"):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        reference = assess(rgb, thresholds)
        refused_as_is += not reference.accepted
        outcomes["as they are"][path.name] = [not reference.accepted]
        for name, variant in variants.items():
            report = assess(variant(rgb), thresholds)
            refused[name] += not report.accepted
            outcomes[name][path.name] = [not report.accepted]
            if report.accepted != reference.accepted:
                flips[name][verdict_label(report, thresholds)] += 1
    n = max(len(photos), 1)
    cell = share_cell(outcomes["as they are"])
    print(f"{part}: {len(photos)} photos, refused as they are: {refused_as_is} ({cell} %, 95% by photo)")
    for name in variants:
        detail = ", ".join(f"{verdict} {count}" for verdict, count in flips[name].most_common()) or "-"
        cell = share_cell(outcomes[name])
        print(f"  {name}: refused {refused[name]} ({cell} %, 95% by photo); verdict changed: {detail}")
    return {"as they are": refused_as_is / n} | {name: refused[name] / n for name in variants}


def plot(
    shares: dict[str, dict[str, float]],
    path: Path,
    title: str = "The gate on good photos as another phone records them (bench/gate_capture.py)",
    labels: list[str] | None = None,
    target: float | None = None,
) -> None:
    """Bars of the share refused after each change, one colour per part (`labels` under the bars instead of the
    changes' names; `target`: a red line at that share). `bench/tone_fairness.py` draws its copies with it too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(next(iter(shares.values())))
    fig, ax = plt.subplots(figsize=(max(11, 0.45 * len(names)), 4.8))
    width = 0.8 / len(shares)
    for k, (part, share) in enumerate(shares.items()):
        xs = np.arange(len(names)) + (k - (len(shares) - 1) / 2) * width
        ax.bar(xs, [100 * share[name] for name in names], width, label=part)
    ax.set_xticks(np.arange(len(names)), labels or names, rotation=35, ha="right", fontsize=7 if labels else 8)
    if target is not None:
        ax.axhline(100 * target, color="#cc3311", lw=0.8)
    ax.set_ylabel("good photos refused (%)")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=("selection", "report", "holdout"), default=["selection"])
    parser.add_argument("--limit", type=int, default=500, help="holdout photos (--part holdout)")
    parser.add_argument("--plot", type=Path, help="bars of the share refused per change and part (PNG)")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="only the changes whose name holds one of these")
    parser.add_argument(
        "--thresholds", type=json.loads, default={}, help="thresholds other than the shipped ones (JSON)"
    )
    args = parser.parse_args()
    thresholds = Thresholds(**args.thresholds)
    variants = {name: v for name, v in VARIANTS.items() if not args.only or any(text in name for text in args.only)}
    shares = {part: judge_part(part, args.limit, variants, thresholds) for part in args.part}
    if args.plot:
        plot(shares, args.plot)


if __name__ == "__main__":
    main()
