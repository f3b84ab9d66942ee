"""Measure the quality gate's raw measures on every image it is fitted or judged on; cache them as JSON.

    nice -n 10 .venv/bin/python bench/gate_measure.py --out var/gate/measures.json [--train-limit 500]

Three sets, each row {"set", "part", "photo", "kind", "label", "measures"}:
- `train`: ACNE04 train photos (a seeded sample), each as is, with two skin-tone shifts, a JPEG/noise copy, a
  skin close-up crop, a cast shadow, and six degradations at random strengths (labelled with the code they should raise, or
  "ignore" when the strength is in the band between clearly fine and clearly faulty); plus non-skin images of
  the fit families (seeds 0..) and background crops of train photos. What the verdict and the
  out-of-distribution statistics are fitted on.
- `valid`: every ACNE04 valid photo, `part` selection or report (detector/datasets/splits.py), through a fixed
  grid of degradations and tone shifts. Thresholds are chosen on `selection`; figures are reported on `report`.
  Lighting faults come twice: placed on the frame, and placed on the lesions' box ("lesion ...").
- `holdout`: the train photos outside the fit sample (491 with the defaults) through the same grid as `valid`:
  no fit and no threshold choice ever read them, so their figures stand beside the report part's.
- `extra-lighting`, `extra-blur`, `extra-capture`, `extra-tone`: more fit rows from the same photos (`measure_train_extra`): a cast
  shadow and a side light placed on the box around the photo's labelled lesions (`gate_data.lesion_box`); focus and
  motion blur near the limits with noise and JPEG after them; fine copies as another phone records them (white
  balance, tone curve, crop, sharpening, mirror: `capture_copies`).
- `extra-tone`: fine copies with more or less pigment in the skin (`pigment_copies`). Not in the shipped fit: refitted
  with them on 2026-11-28 by a rule fixed first, selection's false rejects could not be held at 1.8% (1.81% at the
  lowest budgets), and the melanin-metered dark copies of `bench/tone_fairness.py` were still refused 9.6% (docs/quality_gate.md,
  "Skin tone").
- `real`: real photos that show no skin (`bench/real_images.py`: a cat, a coffee cup, stained tissue...), whole
  and in random crops, enlarged to phone size; `part` development or report (other packages' images).
- `nonskin`: held-back non-skin images (seeds 1000.., every family incl. those never fitted) and background
  crops of valid photos, `part` from the photo's split (generated ones alternate).

Measures are `quality_gate.policy.image_measures` (everything but the distance, which depends on the fit).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from bench import gate_data as gd
from detector.datasets.splits import split_names
from quality_gate.policy import Thresholds, image_measures

ACNE04 = Path("/work/shared/datasets/acne04")

# name -> (degradation, expected code); fixed grid for the valid photos
VALID_GRID: dict[str, tuple[gd.Degradation, str | None]] = {
    "good": (lambda im: im, None),
    "good, JPEG q70": (lambda im: gd.jpeg(im, 70), None),
    "darker 1 stop": (gd.exposure(-1), "too_dark"),
    "darker 2 stops": (gd.exposure(-2), "too_dark"),
    "darker 3 stops": (gd.exposure(-3), "too_dark"),
    "brighter 1 stop": (gd.exposure(1), "too_bright"),
    "brighter 2 stops": (gd.exposure(2), "too_bright"),
    "brighter 3 stops": (gd.exposure(3), "too_bright"),
    "gaussian blur s=1": (gd.gaussian_blur(1), "blurry"),
    "gaussian blur s=2": (gd.gaussian_blur(2), "blurry"),
    "gaussian blur s=3": (gd.gaussian_blur(3), "blurry"),
    "gaussian blur s=2 +noise+JPEG": (gd.then(gd.gaussian_blur(2), gd.noise_and_jpeg(3, 85)), "blurry"),
    "motion blur 12 px": (None, "motion_blur"),  # angle varies per photo, see degrade()
    "motion blur 12 px +noise+JPEG": (None, "motion_blur"),
    "motion blur 25 px": (None, "motion_blur"),
    "downscale 240 px": (gd.downscale(240), "low_resolution"),
    "downscale 160 px": (gd.downscale(160), "low_resolution"),
    "side light 2 stops": (None, "uneven_lighting"),
    "side light 3 stops": (None, "uneven_lighting"),
    "side light 4 stops": (None, "uneven_lighting"),
    "side light 5 stops": (None, "uneven_lighting"),
    "cast shadow 2 stops": (None, "uneven_lighting"),
    "cast shadow 3 stops": (None, "uneven_lighting"),
    "cast shadow 4 stops": (None, "uneven_lighting"),
    # placed on the box around the labelled lesions (gd.lesion_box): the skin a dermatologist needs is in the fault
    "lesion side light 3 stops": (None, "uneven_lighting"),
    "lesion side light 4 stops": (None, "uneven_lighting"),
    "lesion side light 5 stops": (None, "uneven_lighting"),
    "lesion cast shadow 2 stops": (None, "uneven_lighting"),
    "lesion cast shadow 3 stops": (None, "uneven_lighting"),
    "lesion cast shadow 4 stops": (None, "uneven_lighting"),
    "lesion cast shadow 6 stops": (None, "uneven_lighting"),  # beyond the fit's 0.5-5 stops: the outer floor's
    **{name: (gd.tone_shift(*shift), None) for name, shift in gd.TONE_SHIFTS.items()},
}
# every 15 degrees: "in any direction" (issue 12), off the axes and diagonals too (eight angles before 2026-11-29)
MOTION_ANGLES = tuple(15.0 * k for k in range(12))
SIDE_ANGLES = (0.0, 90.0, 180.0, 270.0, 45.0, 225.0)


def grid_direction(name: str, index: int) -> float | None:
    """The direction in degrees `degrade` gives grid fault `name` on the photo at `index` of its set's grid order
    (`grid_photos`): motion blur's smear, side light's fall-off and a cast shadow's side; None for other faults."""
    name = name.removeprefix("lesion ")
    if name.startswith("motion blur"):
        return MOTION_ANGLES[index % len(MOTION_ANGLES)]
    if name.startswith(("side light", "cast shadow")):
        return SIDE_ANGLES[index % len(SIDE_ANGLES)]
    return None


def degrade(name: str, image: np.ndarray, index: int, box: gd.Box | None = None) -> np.ndarray:
    """Apply a grid degradation; motion and side light take a direction that rotates with the photo index
    (`grid_direction`). The "lesion ..." lighting faults are placed on `box` (the frame when the photo has no
    labelled lesion)."""
    angle = grid_direction(name, index) or 0.0  # None only for faults that take no direction
    if name.startswith("lesion "):
        name, placed = name.removeprefix("lesion "), box
    else:
        placed = None
    if name == "motion blur 12 px":
        return gd.motion_blur(12, angle)(image)
    if name == "motion blur 12 px +noise+JPEG":
        return gd.then(gd.motion_blur(12, angle), gd.noise_and_jpeg(3, 85))(image)
    if name == "motion blur 25 px":
        return gd.motion_blur(25, angle)(image)
    if name.startswith("side light"):
        return gd.side_light(float(name.split()[2]), angle, placed)(image)
    if name.startswith("cast shadow"):  # over 30-60% of the frame (or box), penumbra 5-25% of it wide
        cover, soft = 0.3 + 0.3 * ((index * 7) % 11) / 10, 0.05 + 0.2 * ((index * 3) % 5) / 4
        return gd.cast_shadow(float(name.split()[2]), angle, cover, soft, placed)(image)
    return VALID_GRID[name][0](image)


SIDE_LIGHT_FAULT = 4.0  # stops of ramp from which a copy is fitted as uneven lighting (2-3: ACNE04's own range)
CAST_SHADOW_FAULT = 3.0  # stops of cast shadow from which a copy is fitted as uneven lighting


def lighting_label(stops: float, fault: float) -> str | None:
    """Fitted as faulty from `fault` stops, as fine up to 1 stop, left out of the fit in between."""
    return "uneven_lighting" if stops >= fault else (None if stops <= 1.0 else "ignore")


def cast_shadow_copy(
    image: np.ndarray, rng: np.random.Generator, box: gd.Box | None = None
) -> tuple[str, str | None, np.ndarray]:
    """A cast shadow at a random depth, side, cover and penumbra, on the frame or on `box` (its own generator: the
    other rows stay as they were)."""
    stops, angle = rng.uniform(0.5, 5.0), rng.uniform(0, 360)
    cover, soft = rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.25)
    shadowed = gd.cast_shadow(stops, angle, cover, soft, box)(image)
    where = "" if box is None else "lesion "
    return f"{where}cast shadow {stops:.2f}", lighting_label(stops, CAST_SHADOW_FAULT), shadowed


def side_light_copy(
    image: np.ndarray, rng: np.random.Generator, box: gd.Box | None = None
) -> tuple[str, str | None, np.ndarray]:
    """Side light at a random strength and direction, across the frame or across `box`."""
    stops, angle = rng.uniform(0.5, 5.0), rng.uniform(0, 360)
    lit = gd.side_light(stops, angle, box)(image)
    where = "" if box is None else "lesion "
    return f"{where}side light {stops:.2f}", lighting_label(stops, SIDE_LIGHT_FAULT), lit


def random_degradations(image: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str | None, np.ndarray]]:
    """Six degradations at random strengths: (kind, label, image); label "ignore" in the in-between band."""
    out = []
    stops = -rng.uniform(0.5, 4.0)
    out.append((f"exposure {stops:.2f}", "too_dark" if stops <= -1.5 else "ignore", gd.exposure(stops)(image)))
    stops = rng.uniform(0.5, 4.0)
    out.append((f"exposure +{stops:.2f}", "too_bright" if stops >= 1.5 else "ignore", gd.exposure(stops)(image)))
    sigma = rng.uniform(0.5, 5.0)
    label = "blurry" if sigma >= 1.5 else (None if sigma <= 0.8 else "ignore")
    blurred = gd.gaussian_blur(sigma)(image)
    if rng.random() < 0.5:
        blurred = gd.noise_and_jpeg(rng.uniform(1, 4), int(rng.integers(60, 95)), int(rng.integers(1 << 30)))(blurred)
    out.append((f"gaussian {sigma:.2f}", label, blurred))
    length, angle = int(rng.integers(3, 36)), rng.uniform(0, 180)
    label = "motion_blur" if length >= 9 else (None if length <= 4 else "ignore")
    moved = gd.motion_blur(length, angle)(image)
    if rng.random() < 0.5:
        moved = gd.noise_and_jpeg(rng.uniform(1, 4), int(rng.integers(60, 95)), int(rng.integers(1 << 30)))(moved)
    out.append((f"motion {length} px {angle:.0f} deg", label, moved))
    out.append(side_light_copy(image, rng))
    quality = int(rng.integers(50, 95))
    out.append(
        (
            f"noise+JPEG q{quality}",
            None,
            gd.noise_and_jpeg(rng.uniform(0, 3), quality, int(rng.integers(1 << 30)))(image),
        )
    )
    return out


ImageRow = tuple[str, str, str, str, str | None, np.ndarray]  # set, part, photo, kind, label, image


def load_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def row(set_: str, part: str, photo: str, kind: str, label: str | None, image: np.ndarray, t: Thresholds) -> dict:
    return {
        "set": set_,
        "part": part,
        "photo": photo,
        "kind": kind,
        "label": label,
        "measures": image_measures(image, t),
    }


def measure_train(limit: int, seed: int, t: Thresholds) -> list[dict]:
    photos, _ = fit_sample(limit, seed)
    rng = np.random.default_rng(seed)
    shadow_rng = np.random.default_rng(seed + 1)
    rows = []
    tones = list(gd.TONE_SHIFTS.items())
    for path in track(photos, description="train photos"):
        image = load_rgb(path)
        rows.append(row("train", "fit", path.name, "good", None, image, t))
        for index in rng.choice(len(tones), size=2, replace=False):
            name, shift = tones[index]
            rows.append(row("train", "fit", path.name, name, None, gd.tone_shift(*shift)(image), t))
        for kind, label, degraded in random_degradations(image, rng):
            rows.append(row("train", "fit", path.name, kind, label, degraded, t))
        rows.append(row("train", "fit", path.name, *cast_shadow_copy(image, shadow_rng), t))
        close = gd.skin_close_up(image, rng)
        if close is not None:  # upscaled, hence soft: fitted by the out-of-distribution and lighting models only
            rows.append(row("train", "fit", path.name, "close-up", "closeup", close, t))
            stops, angle = rng.uniform(2.5, 6.0), rng.uniform(0, 360)
            lit = gd.side_light(stops, angle)(close)
            label = lighting_label(stops, SIDE_LIGHT_FAULT)
            rows.append(row("train", "fit", path.name, f"close-up side light {stops:.2f}", label, lit, t))
        for crop in gd.background_crops(image, rng, count=1):
            rows.append(row("train", "fit", path.name, "background crop", "not_skin_photo", crop, t))
    fit_families = [f for f in gd.NON_SKIN if f not in gd.HELD_OUT_FAMILIES]
    for family in track(fit_families, description="non-skin (fit)"):
        for s in range(25):
            rows.append(row("train", "fit", f"{family}-{s}", family, "not_skin_photo", gd.non_skin(family, s), t))
    return rows


def measure_train_extra(limit: int, seed: int, t: Thresholds, kinds: set[str]) -> list[dict]:
    """More fit rows from the same fit-sample photos, each family from its own generator (the base rows stay as they
    were): `lighting`, a cast shadow and a side light placed on the lesions' box; `blur`, focus and motion blur near
    the issue's limits with sensor noise and JPEG after them, as a phone records them; `capture`, fine copies as
    another phone records the photo; `tone`, fine copies with more or less pigment in the skin (`pigment_copies`)."""
    photos, _ = fit_sample(limit, seed)
    lesion_rng, blur_rng = np.random.default_rng(seed + 2), np.random.default_rng(seed + 3)
    capture_rng, tone_rng = np.random.default_rng(seed + 4), np.random.default_rng(seed + 5)
    rows = []
    for path in track(photos, description="train photos, extra rows"):
        image = load_rgb(path)
        box = gd.lesion_box(gd.label_file(path))
        if "lighting" in kinds and box is not None:
            rows.append(row("train", "fit", path.name, *cast_shadow_copy(image, lesion_rng, box), t))
            rows.append(row("train", "fit", path.name, *side_light_copy(image, lesion_rng, box), t))
        if "blur" in kinds:
            rows += [row("train", "fit", path.name, *copy, t) for copy in noisy_blur_copies(image, blur_rng)]
        if "capture" in kinds:
            rows += [row("train", "fit", path.name, *copy, t) for copy in capture_copies(image, capture_rng)]
        if "tone" in kinds:
            rows += [row("train", "fit", path.name, *copy, t) for copy in pigment_copies(image, tone_rng)]
    return rows


def pigment_copies(image: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str | None, np.ndarray]]:
    """Two fine copies with the skin at another tone (`gate_data.melanin_shift`: ITA -40..60, colour anywhere between
    the neutral and melanin brackets), one recorded at the photo's exposure and one metered (`bench/tone_fairness.py`
    judges the same on valid); a target the pigment cannot reach without blowing the skin out makes no copy."""
    copies = []
    for metered in (False, True):
        target, mix = rng.uniform(-40.0, 60.0), rng.uniform(0.0, 1.0)
        spectrum = tuple((1 - mix) * n + mix * m for n, m in zip(gd.NEUTRAL_DENSITY, gd.MELANIN_DENSITY, strict=True))
        try:
            copy = gd.melanin_shift(target, spectrum, metered)(image)
        except ValueError:
            continue
        name = f"pigment ITA {target:+.0f} mix {mix:.2f}{', metered' if metered else ''}"
        copies.append((name, None, copy))
    return copies


def capture_copies(image: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str | None, np.ndarray]]:
    """Two fine copies as another phone would record the photo: a white balance set for warmer or cooler light (red
    and blue gains moved 8-35% apart in linear light), and one of a shadow-lifting tone curve, a 3:4 crop, an unsharp
    mask or the mirror image (`bench/gate_capture.py` judges the same changes on valid)."""
    warmth = rng.uniform(0.08, 0.35) * rng.choice([-1.0, 1.0])
    balanced = gd.white_balance(1.0 + warmth, 1.0 - warmth)(image)
    other = int(rng.integers(4))
    if other == 0:
        lift = rng.uniform(0.1, 0.3)
        name, changed = f"tone curve {lift:.2f}", gd.shadow_lift(lift)(image)
    elif other == 1:
        name, changed = "crop 3:4", gd.aspect_crop(3 / 4)(image)
    elif other == 2:
        amount = rng.uniform(0.3, 1.0)
        name, changed = f"unsharp {amount:.2f}", gd.sharpen(amount)(image)
    else:
        name, changed = "mirror", gd.mirror(image)
    return [(f"capture white balance {warmth:+.2f}", None, balanced), (f"capture {name}", None, changed)]


def noisy_blur_copies(image: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str | None, np.ndarray]]:
    """Focus blur (sigma 1-3) and motion blur (6-18 px) with noise and JPEG after them: the band around the limits."""
    sigma, length, angle = rng.uniform(1.0, 3.0), int(rng.integers(6, 19)), rng.uniform(0, 180)
    noise = [gd.noise_and_jpeg(rng.uniform(1, 4), int(rng.integers(60, 95)), int(rng.integers(1 << 30))) for _ in "ab"]
    label = "blurry" if sigma >= 1.5 else "ignore"
    blurred = gd.then(gd.gaussian_blur(sigma), noise[0])(image)
    moved = gd.then(gd.motion_blur(length, angle), noise[1])(image)
    motion_label = "motion_blur" if length >= 9 else "ignore"
    return [
        (f"gaussian {sigma:.2f} +noise+JPEG", label, blurred),
        (f"motion {length} px {angle:.0f} deg +noise+JPEG", motion_label, moved),
    ]


FIT_LIMIT, FIT_SEED = 500, 0  # the train photos the shipped gate was fitted on: how many, and the shuffle's seed


def fit_sample(limit: int = FIT_LIMIT, seed: int = FIT_SEED) -> tuple[list[Path], list[Path]]:
    """The train photos the gate is fitted on (`limit` of them, seeded) and the rest, which no fit reads."""
    photos = sorted((ACNE04 / "train" / "images").glob("*.jpg"))
    random.Random(seed).shuffle(photos)
    return (photos[:limit], photos[limit:]) if limit > 0 else (photos, [])


def part_photos(part: str, limit: int) -> list[Path]:
    """The photos of one protocol part: `selection` or `report` of valid, or the first `limit` photos of the gate's fit
    sample (`fit`) or of the train photos outside it (`holdout`)."""
    from detector.datasets.splits import select_part

    if part in ("fit", "holdout"):
        return fit_sample()[part == "holdout"][:limit]
    return select_part(sorted((ACNE04 / "valid" / "images").glob("*.jpg")), part)


def grid_photos(set_: str, limit: int = FIT_LIMIT, seed: int = FIT_SEED) -> list[Path]:
    """The photos a grid set goes through, in the order whose index sets each fault's direction (`grid_direction`):
    every valid photo by name, or the train photos outside the fit sample (`holdout`)."""
    if set_ == "valid":
        return sorted((ACNE04 / "valid" / "images").glob("*.jpg"))
    return fit_sample(limit, seed)[1]


def grid_images(set_: str, photos: list[Path], part_of: dict[str, str]) -> Iterator[tuple[int, ImageRow]]:
    """Every photo through the fixed grid of degradations and tone shifts: (the photo's index, the row's image)."""
    for index, path in enumerate(track(photos, description=f"{set_} photos x grid")):
        image = load_rgb(path)
        box = gd.lesion_box(gd.label_file(path))
        for name, (_, code) in VALID_GRID.items():
            yield index, (set_, part_of[path.name], path.name, name, code, degrade(name, image, index, box))


def measure_grid(set_: str, photos: list[Path], part_of: dict[str, str], t: Thresholds) -> list[dict]:
    """The measures of `grid_images`, with each good row's skin tone and each fault's direction."""
    rows = []
    for index, image_row in grid_images(set_, photos, part_of):
        rows.append(row(*image_row, t))
        name, code, degraded = image_row[3:]
        if code is None:  # skin tone of the good photos, for the per-tone false-reject rates
            rows[-1]["ita"] = gd.ita(degraded)
        elif (direction := grid_direction(name, index)) is not None:
            rows[-1]["direction"] = direction
    return rows


def grid_set(set_: str, limit: int = FIT_LIMIT, seed: int = FIT_SEED) -> tuple[list[Path], dict[str, str]]:
    """A grid set's photos in grid order (`grid_photos`) and each one's protocol part, by name."""
    photos = grid_photos(set_, limit, seed)
    if set_ != "valid":
        return photos, {path.name: "holdout" for path in photos}
    parts = split_names([p.name for p in photos])
    return photos, {name: part for part, names in parts.items() for name in names}


def measure_valid(t: Thresholds) -> list[dict]:
    return measure_grid("valid", *grid_set("valid"), t)


def measure_holdout(limit: int, seed: int, t: Thresholds) -> list[dict]:
    """The train photos outside the fit sample through the same grid: read by no fit and no choice."""
    return measure_grid("holdout", *grid_set("holdout", limit, seed), t)


def nonskin_images() -> Iterator[ImageRow]:
    """Held-back generated non-skin (seeds 1000.., parts alternating) and a background crop of each valid photo."""
    for family in track(list(gd.NON_SKIN), description="non-skin (held back)"):
        for s in range(1000, 1040):
            part = "selection" if s % 2 == 0 else "report"
            yield "nonskin", part, f"{family}-{s}", family, "not_skin_photo", gd.non_skin(family, s)
    photos = sorted((ACNE04 / "valid" / "images").glob("*.jpg"))
    parts = split_names([p.name for p in photos])
    rng = np.random.default_rng(7)
    for part, names in parts.items():
        for name in names:
            for crop in gd.background_crops(load_rgb(ACNE04 / "valid" / "images" / name), rng, count=1):
                yield "nonskin", part, name, "background crop", "not_skin_photo", crop


def measure_nonskin(t: Thresholds) -> list[dict]:
    return [row(*image_row, t) for image_row in nonskin_images()]


def real_photo_images() -> Iterator[ImageRow]:
    """Real photos that show no skin (`bench/real_images.py`), whole and cropped, at phone size; `part` is the
    source's role (development or report)."""
    from bench import real_images

    for source in track(real_images.SOURCES, description="real non-skin images"):
        for kind, view in real_images.seeded_views(source):
            yield "real", source.role, source.name, f"real {kind}", "not_skin_photo", view


def measure_real(t: Thresholds) -> list[dict]:
    return [row(*image_row, t) for image_row in real_photo_images()]


def set_images(set_: str, limit: int = FIT_LIMIT, seed: int = FIT_SEED) -> Iterator[ImageRow]:
    """The images of a judged set (valid, holdout, nonskin, real) in the order its measures are cached: what a
    candidate network is run on (`bench/content_cnn.py relogit`) without measuring everything again."""
    if set_ in ("valid", "holdout"):
        return (image_row for _, image_row in grid_images(set_, *grid_set(set_, limit, seed)))
    if set_ == "nonskin":
        return nonskin_images()
    if set_ == "real":
        return real_photo_images()
    raise ValueError(f"no judged set {set_!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("var/gate/measures.json"))
    parser.add_argument("--train-limit", type=int, default=FIT_LIMIT, help="train photos to sample (0 = all)")
    parser.add_argument("--seed", type=int, default=FIT_SEED)
    parser.add_argument(
        "--sets",
        default="train,valid,nonskin",
        help="also holdout, real, extra-lighting, extra-blur, extra-capture, extra-tone (more fit rows)",
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    t = Thresholds()
    rows: list[dict] = []
    sets = args.sets.split(",")
    if "train" in sets:
        rows += measure_train(args.train_limit, args.seed, t)
    if "valid" in sets:
        rows += measure_valid(t)
    if "nonskin" in sets:
        rows += measure_nonskin(t)
    if "holdout" in sets:
        rows += measure_holdout(args.train_limit, args.seed, t)
    if "real" in sets:
        rows += measure_real(t)
    extra = {name.removeprefix("extra-") for name in sets if name.startswith("extra-")}
    if extra:
        rows += measure_train_extra(args.train_limit, args.seed, t, extra)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows))
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
