"""Train the gate's lighting CNN (`quality_gate/lighting_cnn.py`); choose its settings by cross-validation (issue 12).

    nice .venv/bin/python bench/lighting_cnn.py pack --out .gpu/lighting
    nice .venv/bin/python bench/lighting_cnn.py cv --data .gpu/lighting --configs base,no-extra --out var/gate/lighting-cv
    nice .venv/bin/python bench/lighting_cnn.py cv --joint --configs base --inputs var/gate/lighting-cv/inputs.npy
    nice .venv/bin/python bench/lighting_cnn.py fit --data .gpu/lighting --config base --out var/gate/lighting-cv
    .venv/bin/python bench/lighting_cnn.py plot --out var/gate/lighting-cv      # docs/figures/lighting_cnn_cv.png
    .venv/bin/python bench/lighting_cnn.py export --weights var/gate/lighting-cv/base.pt var/gate/lighting-cv/no-extra.pt
    .venv/bin/python bench/lighting_cnn.py merge --graphs pair-a.onnx pair-b.onnx      # mean of two exported graphs
    nice .venv/bin/python bench/gate_measure.py --sets valid --out var/gate/m2-valid.json    # the new measure
    .venv/bin/python bench/lighting_cnn.py threshold --measures var/gate/m2-valid.json     # selection part only

Protocol. Only the gate's fit sample is read (`gate_measure.fit_sample`: 500 `train` photos; `pack` copies them
with their labels into a git-ignored folder that can travel to a GPU machine), so the holdout (the other 491 train
photos) and `valid` stay unseen by training and by every choice made here. Settings are chosen by 5-fold
cross-validation by photo: each fold's network scores its held-out photos through the serving path (640 px photo,
the gate's working copies, `model_input`) as they are, in JPEG and with the five tone shifts (fine), and with the
valid grid's lighting faults (`gate_measure.degrade`) plus two families the grid does not have (blob shadows and a
spot light) that only some configurations train on: a check that the network generalises beyond its own
generator. Thresholds at 1% and 2% of the pooled fine copies give the catch per fault; `cv` prints the table, with
a column for the mean of the configurations' logits (an ensemble), and the mean catch over the grid's faults and
over all faults at 1%. What ships is the ensemble of `base` and `no-extra` (one ONNX graph, `export`): in that
cross-validation it caught 90.0% of all faults at 1% of fine copies, against 87.9% and 88.5% for each alone
(`no-extra` catches more of the grid's own faults, `base` more of the families only it was trained on).
`base-v` / `no-extra-v` add lens vignetting (up to 1.5 stops) to the fine copies: their mean, at the threshold the
same rule chose on the selection part (2.25), caught 2.4 points fewer of the lesion faults there than the shipped
pair at 1.5, so it was not shipped.

What shipped next was four networks: that pair and `long` + `no-extra-long` (80 epochs each, fitted on the CPU), one
graph (`merge`: the mean of the two pairs' graphs); what ships now (rule L9, 2026-11-29) is that graph merged with the
four `-s` networks' (side light on the whole frame too; docs/quality_gate.md). Rules fixed before each figure, on the
selection part only: the long pair alone, at its rule-chosen threshold 2.25, caught more of the grid's nine lighting
faults (93.0% against 91.3%) but refused 2.01% of good rows against the rule's 2.0% cap, and at the shipped pair's
false rejects (1.91%) it caught less (88.3%), so it did not ship alone; the four, at their rule-chosen 1.75, caught
92.8% with 1.81%.

Colour casts (`bench/gate_capture.py`: a tungsten or shade white balance turned good photos `uneven_lighting`
through this network's logit, not the trees). Tried with one rule fixed before each figure (selection only: at the
rule-chosen threshold the nine grid faults' mean catch may drop at most 1 point from the shipped four's 92.7%, and
fewer selection photos may be refused under the four white balances than the shipped gate's 18), none shipped:
- the four configurations retrained with casts in every copy's jitter (`-c`, 40% of copies, red and blue up to
  1.45x apart): threshold 2.50, grid mean 89.3%;
- the shipped networks with a grey-world input (each input's mean colour brought to `CHROMA_REFERENCE`): casts
  moved the logit 0.04-0.06 on average instead of 0.2-0.76, but good photos of unusual colour rose (the networks
  never saw such inputs): threshold 3.50, grid mean 87.4%;
- `base-g` + `no-extra-g`, trained with casts on grey-world inputs and served the same way (casts moved the logit
  0.03-0.06): threshold 2.75, grid mean 87.7%.
Networks blind to the cast lose catch at the same false rejects; why was not studied. The networks were fitted on
the CPU (`fit`, 10-35 min each) without a cross-validation; the grey-world serving input was a patch of
`model_input` in a scratch worktree (the same gains as `grey_world`, on the 64 px copy), not kept.

Longer training (`xlong` + `no-extra-xlong`, 160 epochs, twice the long pair's; fitted on the CPU, 21 min each, when a
lent GPU was refused), judged by a rule fixed before the figure (selection only: at the rule-chosen threshold, false
rejects <= 2.0% and the nine grid faults' mean catch at least one point above the shipped four's 92.66%): the pair
alone, threshold 3.50, false rejects 1.91%, grid mean 92.5%; the pair merged with the shipped four's graph (`merge`),
2.75, 1.71%, 92.3%. Neither shipped: past 80 epochs these networks catch no more at the false rejects allowed.

A log-light input plane (`base-log`, `no-extra-log`, `long-log`, `no-extra-long-log`: `model_input(log_light=True)`
adds log2 of the linear luma, where a shadow adds a smooth field to the skin's own log reflectance; the four trained
on a lent H200, 200 s in all), judged by a rule fixed before the figures (selection only, the threshold rule above:
ship if false rejects <= 2.0%, the nine grid faults' mean catch >= the shipped four's 92.66% + 1 point, and no more
selection photos refused under the four white balances than the shipped 18): the four alone, threshold 2.25, false
rejects 1.91%, grid mean 91.9%; merged with the shipped four, 1.75, 1.91%, 93.0%. Neither shipped. The
cross-validation agrees (`cv`, on the same H200 and code): `base-log` caught 86.1% of the grid faults and 84.6% of
all at 1% of fine copies, `base` 86.6% and 85.2% (87.9% of all when it was first cross-validated, on an earlier
state of the serving path and of torch). The sRGB planes already carry what the log plane says.

Faults on the whole frame (session 21). Every training copy used to place its lighting change on the box around the
labelled lesions (median 33% of the frame), so the networks had almost never seen a frame-wide ramp, the grid's worst
lighting row. `<name>-f` (a copy's change lands on the whole frame half the time, and a fault that darkens less than
half of the labelled lesions by a stop is drawn again: `bench/lighting_reach.py`) trained on a lent H200 (341 s for the
four) and judged by a rule fixed first (selection, the shipped threshold rule): at its threshold 2.00 it caught frame
side light 4 stops 92.3% against the shipped 83.8%, but cast shadows 4-6 points less (frame 3 stops 83.1 vs 88.7%),
the nine grid faults' mean 91.5 vs 92.66%, false rejects 2.21 vs 2.01%: not shipped; merged with the shipped four
(`merge`), threshold 1.50, side light 90.8%, cast shadow 86.6%, mean 93.1%, false rejects 2.11%: not shipped either.
`<name>-fo` (frame placement alone, no reach filter; the four fitted on the CPU, 8-12 min each) raised good photos'
logits: threshold 2.75, side light 85.2%, cast shadow 83.1%, mean 90.8%, false rejects 2.31%; merged with the shipped
four, 2.00, 86.6%, 87.3%, 92.4%, 2.31%: neither shipped. The reach filter is what let `-f` gain on side light; every
network trained with frame placement caught fewer cast shadows.
`<name>-s` (session 22, CPU, 4.5-9 min each): side light alone on the frame half the time, every shadow, blob and spot
on the box as shipped, no reach filter. Same rule's items (selection): the four at their threshold 2.25 caught frame
side light 4 stops 88.0% but cast shadow 3 stops 86.6% (-2.1), false rejects 2.21%; merged with the shipped four, 1.75,
86.6% (one photo short of +3), 88.0%, mean 92.97% (short of +1), false rejects 2.11%: neither shipped. Cast shadows
fell even with every shadow on the box: the networks that learn frame side light give up some cast shadows.
Read once after, the merge beat the shipped graph on all four lighting bars of report+holdout (frame side light 88.0
vs 80.4%), having failed on selection by a photo. Cross-validated on the fit sample (`cv --configs base` and `base-s`,
CPU, 21 min; `compare --scores oof-base.npy oof-base-s.npy`: paired by photo), at 1% of fine copies: frame side light 4
stops +3.2 points [+0.6, +5.8], frame cast shadow 3 -0.6 [-2.8, +1.6], lesion side light 4 +0.4, lesion cast shadow 3
-0.6, the nine faults' mean +0.7 [-0.2, +1.5]: the signs report+holdout gave, on 500 photos rather than 142.
`<name>-sw` (rule L7): as `-s`, cast shadows drawn twice as often among the faults, judged first by `cv` of `base-sw`
against `base`: frame side light -4.6 [-7.4, -2.0], the mean -1.2: not shipped. Read once after (descriptive), the four
`-sw` networks at their threshold 2.00 beat the shipped graph on every lighting bar of report+holdout (frame side light
87.5%, cast shadows 86.7% frame, 89.6% lesions) and the four `-s` on both cast-shadow bars, refusing 4.3% of photos and
copies (4.0): cv of one recipe had not predicted the ensemble. A recipe's judge is the out-of-fold ensemble of its four
(`compare --base oof-base.npy oof-no-extra.npy ... --other ...`). `cv --joint` (session 23) trains a recipe's five
fold networks from one stream of copies, a fifth of the copy-making: cross-validating `base` and `base-s` that way
gave the per-fold comparison's signs and sizes (frame side light +4.4 against +3.2 points, the nine faults' mean +0.8
against +0.7), each network 2-5 points weaker on both sides; the ensemble judge's out-of-fold scores are kept in
docs/evidence/lighting-cv.

Training copies are made on a 128 px copy of each photo (lighting is smooth, so a fault applied there and squeezed
to 64 px matches one applied at 640 px): a fault half the time (side light 3.5-6 stops, cast shadow 2.5-6.5,
blob shadow 2.5-6, spot light 3.5-6; on the frame or on the box around the lesions), otherwise fine (as is, or
light changes up to 1 stop); then for both an exposure shift, a skin-tone shift, blur, flips, quarter turns and a
crop of any aspect. Stops between fine and fault (1-2.5) are never shown: ACNE04's own photos hold side light of
2-3 stops.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from bench import gate_data as gd
from bench.figures import save_figure
from bench.gate_measure import VALID_GRID, degrade, fit_sample, load_rgb
from bench.lighting_reach import REACH_SHARE, grey_frame, lesion_mask, reached_share, stops_taken
from bench.relogit import served_half
from quality_gate.lighting_cnn import INPUT_SIDE, MODEL_PATH, model_input

TRAIN_SIDE = 128  # the training copy's side; crops of it are squeezed to INPUT_SIDE
REACH_DRAWS = 8  # draws of a fault copy that must reach the lesions (`Config.min_reach`)
FOLDS = 5


@dataclass(frozen=True)
class Config:
    families: tuple[str, ...] = ("side", "shadow", "blob", "spot")
    width: int = 16
    epochs: int = 40
    per_photo: int = 8  # training copies of each photo per epoch
    lr: float = 3e-3
    vignettes: bool = False  # lens vignetting up to 1.5 stops among the fine copies
    casts: bool = False  # colour casts (white balance for another light) on fine and faulty copies alike
    grey_world: bool = False  # each copy's mean colour brought to the fit sample's (`grey_world`): casts vanish
    log_light: bool = False  # a fourth input plane, log2 of linear luma (`model_input`): light adds to reflectance
    # share of copies whose lighting change (fault or fine) lands on the whole frame rather than on the lesions' box
    frame_share: float = 0.0
    # the changes that take a frame placement (None: every one); the others stay on the box
    frame_families: tuple[str, ...] | None = None
    # a fault copy darkening less than this share of the labelled lesions by a stop (`lighting_reach`) is drawn again
    min_reach: float = 0.0

    @property
    def planes(self) -> int:
        return 4 if self.log_light else 3


CONFIGS_SHIPPED: dict[str, Config] = {  # four of the eight networks in lighting_cnn.onnx (the `-s` four: below)
    "base": Config(),
    "no-extra": Config(families=("side", "shadow")),  # never sees blob or spot: do faults generalise?
    "long": Config(epochs=80),
    "no-extra-long": Config(families=("side", "shadow"), epochs=80),
}
CONFIGS: dict[str, Config] = {
    **CONFIGS_SHIPPED,
    "wide": Config(width=24),
    # after the selection part showed vignetting of 1-1.5 stops read as uneven light (2.8-5.6% of good photos);
    # not shipped: see the docstring
    "base-v": Config(vignettes=True),
    "no-extra-v": Config(families=("side", "shadow"), vignettes=True),
    # after gate_capture showed a tungsten white balance turning good photos `uneven_lighting` (the networks had never
    # seen a colour cast): the four shipped configurations with casts among every copy's jitter
    "base-c": Config(casts=True),
    "no-extra-c": Config(families=("side", "shadow"), casts=True),
    "long-c": Config(epochs=80, casts=True),
    "no-extra-long-c": Config(families=("side", "shadow"), epochs=80, casts=True),
    # the same casts, with every input brought to one mean colour first (serving would have to do the same)
    "base-g": Config(casts=True, grey_world=True),
    "no-extra-g": Config(families=("side", "shadow"), casts=True, grey_world=True),
    # twice the long pair's epochs (80 epochs had caught more than 40): on the CPU, the GPU loan being paused
    "xlong": Config(epochs=160),
    "no-extra-xlong": Config(families=("side", "shadow"), epochs=160),
    # the shipped four with the log-light plane (a shadow or a fall-off is a smooth field added to the skin's own
    # log reflectance there, rather than a factor the network must undo from sRGB)
    "base-log": Config(log_light=True),
    "no-extra-log": Config(families=("side", "shadow"), log_light=True),
    "long-log": Config(epochs=80, log_light=True),
    "no-extra-long-log": Config(families=("side", "shadow"), epochs=80, log_light=True),
    # the shipped four with half of the copies lit on the whole frame (the grid's frame rows: the training copies
    # had placed every change on the lesions' box) and no fault that leaves the lesions lit (session 21, rule L2)
    **{
        f"{name}-f": replace(CONFIGS_SHIPPED[name], frame_share=0.5, min_reach=REACH_SHARE)
        for name in ("base", "no-extra", "long", "no-extra-long")
    },
    # the same placement without the reach filter (L2's four lost cast shadows: which change did it?)
    **{
        f"{name}-fo": replace(CONFIGS_SHIPPED[name], frame_share=0.5)
        for name in ("base", "no-extra", "long", "no-extra-long")
    },
    # side light alone on the frame, shadows, blobs and spots on the box as shipped (every variant that put shadows on
    # the frame lost cast shadows; side light on the frame was the gain; session 22, rule L5)
    **{
        f"{name}-s": replace(CONFIGS_SHIPPED[name], frame_share=0.5, frame_families=("side",))
        for name in ("base", "no-extra", "long", "no-extra-long")
    },
    # the same with cast shadows drawn twice as often among the faults, to win back the cast shadows `-s` gave up
    # (session 22, rule L7: judged by `cv` + `compare` first)
    **{
        f"{name}-sw": replace(
            CONFIGS_SHIPPED[name],
            frame_share=0.5,
            frame_families=("side",),
            families=tuple(
                f for family in CONFIGS_SHIPPED[name].families for f in [family] * (2 if family == "shadow" else 1)
            ),
        )
        for name in ("base", "no-extra", "long", "no-extra-long")
    },
}
# log of the mean linear red / green and blue / green of a photo, median over the gate's fit sample (64 px inputs)
CHROMA_REFERENCE = (0.5325, -0.4650)
CAST_REACH = math.log(1.45)  # red and blue gains up to 1.45x apart each way: past tungsten (1.35, 0.7) and shade

GRID_FAULTS = (
    "side light 4 stops",
    "side light 5 stops",
    "cast shadow 3 stops",
    "cast shadow 4 stops",
    "lesion side light 4 stops",
    "lesion side light 5 stops",
    "lesion cast shadow 3 stops",
    "lesion cast shadow 4 stops",
    "lesion cast shadow 6 stops",
)
GRID_MILD = ("side light 2 stops", "side light 3 stops", "cast shadow 2 stops", "lesion cast shadow 2 stops")
EXTRA_FAULTS = (
    "lesion blob shadow 3 stops",
    "lesion blob shadow 5 stops",
    "lesion spot light 4 stops",
    "lesion spot light 5 stops",
)
FINE = ("good", "good, JPEG q70", *gd.TONE_SHIFTS)
EXPOSED = ("darker 1 stop", "brighter 1 stop")  # fine for this network (other codes judge exposure); reported only
VIGNETTED = ("good, vignette 1 stop", "good, vignette 1.5 stops")  # fine, reported only (not in the thresholds)
CASTS = tuple(gd.WHITE_BALANCES)  # fine, reported only: a network that reads a colour cast as uneven light refuses them


# --- fault families beyond gate_data's ramp and straight-edged shadow --------------------------------------------


def _frame_point(rng: np.random.Generator, box: gd.Box | None) -> tuple[float, float]:
    x0, y0, x1, y1 = box if box is not None else (0.2, 0.2, 0.8, 0.8)
    return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))


def blob_shadow(stops: float, rng: np.random.Generator, box: gd.Box | None = None) -> gd.Degradation:
    """A soft elliptical shadow (a hand, a phone, a hat brim) centred on the box, 15-40% of the frame across."""
    cx, cy = _frame_point(rng, box)
    rx, ry, angle = rng.uniform(0.15, 0.4), rng.uniform(0.15, 0.4), rng.uniform(0, 180)
    soft = rng.uniform(0.03, 0.15)

    def apply(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (round(cx * w), round(cy * h)), (round(rx * w), round(ry * h)), angle, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(soft * w, 0.5))
        return gd.relight(image, -stops * mask)

    return apply


def spot_light(stops: float, rng: np.random.Generator, box: gd.Box | None = None) -> gd.Degradation:
    """Light from a lamp close by: full at a point on the box, falling off by `stops` towards the far corner."""
    cx, cy = _frame_point(rng, box)
    power = rng.uniform(0.7, 2.0)

    def apply(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = np.hypot(xx / w - cx, yy / h - cy)
        depth = stops * (dist / max(float(dist.max()), 1e-3)) ** power
        return gd.relight(image, -depth)

    return apply


def fault_copy(family: str, image: np.ndarray, rng: np.random.Generator, box: gd.Box | None) -> np.ndarray:
    angle = float(rng.uniform(0, 360))
    if family == "side":
        return gd.side_light(rng.uniform(3.5, 6.0), angle, box)(image)
    if family == "shadow":
        cover, soft = rng.uniform(0.2, 0.7), rng.uniform(0.02, 0.35)
        return gd.cast_shadow(rng.uniform(2.5, 6.5), angle, cover, soft, box)(image)
    if family == "blob":
        return blob_shadow(rng.uniform(2.5, 6.0), rng, box)(image)
    return spot_light(rng.uniform(3.5, 6.0), rng, box)(image)


def vignette(stops: float, rng: np.random.Generator | None = None) -> gd.Degradation:
    """Lens vignetting: light falling off with the square of the distance from (near) the centre, by `stops` at the
    corners; a phone corrects most of it, and what is left must not read as uneven light."""
    cx, cy = (0.5, 0.5) if rng is None else (float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6)))

    def apply(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx / w - cx) ** 2 + (yy / h - cy) ** 2) / 0.5
        return gd.relight(image, -stops * r2)

    return apply


def fine_copy(
    image: np.ndarray, rng: np.random.Generator, side_box: gd.Box | None, shadow_box: gd.Box | None, vignettes: bool
) -> np.ndarray:
    """A copy whose light stays even enough: mild side light on `side_box`, a mild shadow on `shadow_box` (None: the
    whole frame), vignetting, or the photo as it is."""
    draw = rng.random()
    angle = float(rng.uniform(0, 360))
    if draw < 0.15:
        return gd.side_light(rng.uniform(0.0, 1.0), angle, side_box)(image)
    if draw < 0.3:
        cover, soft = rng.uniform(0.2, 0.7), rng.uniform(0.02, 0.35)
        return gd.cast_shadow(rng.uniform(0.0, 1.0), angle, cover, soft, shadow_box)(image)
    if vignettes and draw < 0.5:
        return vignette(rng.uniform(0.0, 1.5), rng)(image)
    return image


def colour_cast(rng: np.random.Generator) -> gd.Degradation:
    """A white balance set for warmer or cooler light than the scene's, with a little tint either way."""
    warmth = float(rng.uniform(-1.0, 1.0)) * CAST_REACH
    red, blue = math.exp(warmth + rng.normal(0, 0.05)), math.exp(-warmth + rng.normal(0, 0.05))
    return gd.white_balance(red, blue)


def grey_world(image: np.ndarray) -> np.ndarray:
    """The photo with its mean linear red and blue against green brought to `CHROMA_REFERENCE`, light kept."""
    linear = gd.srgb_to_linear(image)
    red, green, blue = (max(float(m), 1e-6) for m in linear.reshape(-1, 3).mean(axis=0))
    red_gain, blue_gain = math.exp(CHROMA_REFERENCE[0]) * green / red, math.exp(CHROMA_REFERENCE[1]) * green / blue
    return gd.white_balance(red_gain, blue_gain)(image)


def jitter(image: np.ndarray, rng: np.random.Generator, casts: bool = False) -> np.ndarray:
    """What changes a photo without making its light uneven: exposure, skin tone, focus, orientation, framing and,
    with `casts`, the camera's white balance (drawn last, so configurations without it keep their copies)."""
    if rng.random() < 0.5:
        image = gd.exposure(rng.uniform(-2.5, 2.5) if rng.random() < 0.3 else rng.uniform(-1.0, 1.0))(image)
    if rng.random() < 0.25:
        image = gd.tone_shift(rng.uniform(-40.0, 8.0), rng.uniform(-2.0, 10.0))(image)
    if rng.random() < 0.15:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = np.rot90(image, int(rng.integers(4))) if rng.random() < 0.3 else image
    h, w = image.shape[:2]
    scale, aspect = rng.uniform(0.7, 1.0), math.exp(rng.uniform(-0.3, 0.3))
    ch, cw = min(h, round(h * scale * math.sqrt(aspect))), min(w, round(w * scale / math.sqrt(aspect)))
    y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    image = np.ascontiguousarray(image[y : y + ch, x : x + cw])
    return colour_cast(rng)(image) if casts and rng.random() < 0.4 else image


# --- data -------------------------------------------------------------------------------------------------------


def pack(out: Path) -> None:
    """Copy the fit sample's photos and labels into `out` (git-ignored; travels to a GPU machine)."""
    photos, _ = fit_sample()
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copy2(photo, out / "images" / photo.name)
        if gd.label_file(photo).is_file():
            shutil.copy2(gd.label_file(photo), out / "labels" / gd.label_file(photo).name)
    print(f"packed {len(photos)} photos into {out}")


def folds_of(photos: list[Path]) -> list[int]:
    """Fold of each photo (sorted names, round robin after a seeded shuffle): fixed across configurations."""
    order = np.random.default_rng(0).permutation(len(photos))
    fold = [0] * len(photos)
    for rank, index in enumerate(order):
        fold[index] = rank % FOLDS
    return fold


# --- model and training ---------------------------------------------------------------------------------------


def make_model(width: int, planes: int = 3, batch_norm: bool = True):
    """Six 3x3 convolutions, pooled, one logit. Without `batch_norm`, each convolution has a bias instead: the shape of
    an exported graph (batch norm folded into the convolutions), which `content_cnn.from_onnx` fine-tunes."""
    import torch.nn as nn

    def block(cin: int, cout: int, stride: int) -> list:
        if not batch_norm:
            return [nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True)]
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    w = width
    return nn.Sequential(
        *block(planes, w, 2),
        *block(w, 2 * w, 2),
        *block(2 * w, 2 * w, 1),
        *block(2 * w, 4 * w, 2),
        *block(4 * w, 4 * w, 1),
        *block(4 * w, 6 * w, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6 * w, 1),
    )


class Copies:
    """Map-style dataset over the whole run: item i is a training copy of photo i % n from its own seed, so one
    pass of one loader (workers started once) is every epoch. With `folds` (each photo's), an item also gives its
    photo's fold (`train` with folds)."""

    def __init__(
        self,
        images: list[np.ndarray],
        boxes: list[gd.Box | None],
        config: Config,
        seed: int,
        lesions: list[np.ndarray] | None = None,
        folds: list[int] | None = None,
    ) -> None:
        self.images, self.boxes, self.config, self.seed = images, boxes, config, seed
        self.lesions = lesions  # each photo's labelled lesions as a mask of its training copy (`min_reach`)
        self.folds = folds

    def __len__(self) -> int:
        return len(self.images) * self.config.per_photo * self.config.epochs

    def __getitem__(self, i: int) -> tuple:
        rng = np.random.default_rng([self.seed, i])
        k = i % len(self.images)
        image, box = self.images[k], self.boxes[k]
        label = rng.random() < 0.5
        placed = self.placement(rng, box)
        if label:
            family = str(rng.choice(self.config.families))
            image = self.fault(family, image, rng, self.landing(family, box, placed), k)
        else:
            side, shadow = self.landing("side", box, placed), self.landing("shadow", box, placed)
            image = fine_copy(image, rng, side, shadow, self.config.vignettes)
        image = jitter(image, rng, self.config.casts)
        image = grey_world(image) if self.config.grey_world else image
        copy = model_input(image, self.config.log_light)[0], np.float32(label)
        return copy if self.folds is None else (*copy, np.int64(self.folds[k]))

    def placement(self, rng: np.random.Generator, box: gd.Box | None) -> gd.Box | None:
        """Where a copy's lighting change lands: the lesions' `box`, or the whole frame (None) for `frame_share` of
        the copies. Without a frame share nothing is drawn, so the older recipes' copies stay as they were."""
        return None if self.config.frame_share > 0 and rng.random() < self.config.frame_share else box

    def landing(self, family: str, box: gd.Box | None, placed: gd.Box | None) -> gd.Box | None:
        """Where a change of `family` lands: the drawn placement, or the lesions' box for families that
        `frame_families` keeps there."""
        frames = self.config.frame_families
        return placed if frames is None or family in frames else box

    def fault(self, family: str, image: np.ndarray, rng: np.random.Generator, box: gd.Box | None, k: int) -> np.ndarray:
        """A fault copy of photo `k`; with `min_reach`, one that darkens that share of its labelled lesions by a stop
        (`lighting_reach`: read on a flat grey frame put through the same draw), drawn again up to `REACH_DRAWS`
        times (the last draw is kept); photos without a label are not filtered."""
        lesions = self.lesions[k] if self.lesions is not None else None
        if self.config.min_reach <= 0 or lesions is None or not lesions.any():
            return fault_copy(family, image, rng, box)
        for _ in range(REACH_DRAWS):  # each draw tried on grey; only the one kept is made of the photo
            state = rng.bit_generator.state
            taken = stops_taken(fault_copy(family, grey_frame(image.shape[:2]), rng, box))
            if reached_share(lesions, taken) >= self.config.min_reach:
                break
        again = np.random.default_rng()
        again.bit_generator.state = state  # the same draw again (faults draw before they read the image)
        return fault_copy(family, image, again, box)


def train(
    images: list[np.ndarray],
    boxes: list[gd.Box | None],
    config: Config,
    device: str,
    workers: int,
    seed: int,
    lesions: list[np.ndarray] | None = None,
    folds: list[int] | None = None,
) -> list:
    """A recipe's network on every photo's copies; with `folds` (`cv --joint`), one network per fold from one stream of
    copies, network k learning from, and normalising its batches over, only the copies of photos outside fold k. Each
    sees as many copies of each of its photos as a fold trained alone, in batches of ~4/5 of 128 over a quarter more
    steps. Making the copies is most of a network's cost on a lent GPU's cores (the networks are tiny), so the joint
    cv costs a fifth: the four-recipe ensemble's cv becomes a lent GPU's job."""
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    data = Copies(images, boxes, config, seed, lesions, folds)

    def outside(k: int, fold):  # network k never sees fold k's copies
        return fold != k

    count, keep = (1, None) if folds is None else (max(folds) + 1, outside)
    models = [make_model(config.width, config.planes).to(device) for _ in range(count)]
    loader = DataLoader(
        data, batch_size=128, shuffle=True, num_workers=workers, drop_last=True, pin_memory=device != "cpu"
    )
    return optimise(models, loader, config.lr, device, keep=keep, subset=True)


def optimise(
    models: list,
    loader,
    lr: float,
    device: str,
    logit: Callable | None = None,
    keep: Callable | None = None,
    subset: bool = False,
) -> list:
    """One pass of `loader` (every epoch: `Copies`) with AdamW and a one-cycle schedule, every model on the same
    batches (several widths, or several folds, trained at the cost of one data stream); `logit(model, x)` is a
    batch's logits; `keep(k, *extra)` weighs each sample 0 or 1 for model k from what the loader gives beyond x and y
    (a fold network's own photos left out: `content_cnn.fit`). With `subset`, samples weighed 0 do not pass through
    model k at all, so its batch-norm statistics never see them either (`train` with folds)."""
    import torch

    logit = logit or (lambda model, x: model(x).squeeze(1))
    optimisers = [torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=1e-4) for m in models]
    schedules = [
        torch.optim.lr_scheduler.OneCycleLR(o, max_lr=lr, total_steps=len(loader), pct_start=0.15) for o in optimisers
    ]
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    for model in models:
        model.train()
    report, totals = max(len(loader) // 4, 1), [0.0] * len(models)
    for step, (x, y, *extra) in enumerate(loader, 1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        extra = [e.to(device, non_blocking=True) for e in extra]
        for k, (model, optimiser, schedule) in enumerate(zip(models, optimisers, schedules, strict=True)):
            if keep is None:
                loss = loss_fn(logit(model, x), y).mean()
            else:
                weight, xs, ys = keep(k, *extra).float(), x, y
                if subset:
                    rows = weight > 0
                    weight, xs, ys = weight[rows], x[rows], y[rows]
                loss = (loss_fn(logit(model, xs), ys) * weight).sum() / weight.sum().clamp(min=1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            totals[k] += float(loss.detach())
        if step % report == 0:
            print(f"  step {step}/{len(loader)} loss " + " ".join(f"{t / report:.4f}" for t in totals), flush=True)
            totals = [0.0] * len(models)
    return [model.eval() for model in models]


def training_copies(photos: list[Path]) -> tuple[list[np.ndarray], list[gd.Box | None]]:
    images = [cv2.resize(load_rgb(p), (TRAIN_SIDE, TRAIN_SIDE), interpolation=cv2.INTER_AREA) for p in photos]
    return images, [gd.lesion_box(gd.label_file(p)) for p in photos]


def lesion_masks(photos: list[Path]) -> list[np.ndarray]:
    """Each photo's labelled lesions on its training copy (all False without a label)."""
    return [lesion_mask(gd.lesion_boxes(gd.label_file(p)), (TRAIN_SIDE, TRAIN_SIDE)) for p in photos]


# --- evaluation through the serving path --------------------------------------------------------------------------


def served_input(image: np.ndarray) -> np.ndarray:
    """What the gate feeds the network: the half-size working copy of the photo inside any uniform frame
    (`policy.image_measures`), squeezed; with the log-light plane, which a network without it does not read (`score`)."""
    return model_input(served_half(image), log_light=True)[0]


def variant(name: str, image: np.ndarray, index: int, box: gd.Box | None) -> np.ndarray:
    if name in VALID_GRID:
        return degrade(name, image, index, box)
    if "vignette" in name:
        return vignette(float(name.split()[-2]))(image)
    if name in gd.WHITE_BALANCES:
        return gd.white_balance(*gd.WHITE_BALANCES[name])(image)
    rng = np.random.default_rng([index, len(name)])
    stops = float(name.split()[-2])
    make: Callable = blob_shadow if "blob" in name else spot_light
    return make(stops, rng, box)(image)


EVAL_NAMES = (*FINE, *EXPOSED, *GRID_MILD, *GRID_FAULTS, *EXTRA_FAULTS, *VIGNETTED, *CASTS)  # scores saved before
# the vignetted or cast rows were added lack the last columns: `table` and `compare` read the columns a file has


def _eval_inputs(job: tuple[int, str]) -> np.ndarray:
    index, path = job
    image, box = load_rgb(Path(path)), gd.lesion_box(gd.label_file(Path(path)))
    return np.stack([served_input(variant(name, image, index, box)) for name in EVAL_NAMES]).astype(np.float16)


def evaluation_inputs(photos: list[Path], processes: int) -> np.ndarray:
    """photos x names x 3 x 64 x 64 (float16), made once and scored by every fold's network."""
    jobs = [(i, str(p)) for i, p in enumerate(photos)]
    with multiprocessing.Pool(processes) as pool:
        return np.stack(pool.map(_eval_inputs, jobs, chunksize=4))


def cached_inputs(photos: list[Path], cache: Path | None, processes: int) -> np.ndarray:
    """`evaluation_inputs`, kept in `cache` (.npy) when given: two cv runs side by side, one per core, then share the
    6-10 minutes of copies rather than each making them. A cache of other photos or variants is made again."""
    if cache is not None and cache.exists():
        inputs = np.load(cache)
        if inputs.shape[:2] == (len(photos), len(EVAL_NAMES)):
            return inputs
    inputs = evaluation_inputs(photos, processes)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, inputs)
    return inputs


def score(model, inputs: np.ndarray, device: str, planes: int = 3) -> np.ndarray:
    """Logits of photos x names inputs (`evaluation_inputs`, or any photos x names x planes x H x W); a network reads
    its first `planes` planes."""
    import torch

    with torch.no_grad():
        flat = inputs.reshape(-1, *inputs.shape[2:])[:, :planes]
        x = torch.from_numpy(flat.astype(np.float32)).to(device)
        out = torch.cat([model(chunk).squeeze(1) for chunk in x.split(1024)]).cpu().numpy()
    return out.reshape(inputs.shape[:2])


def table(scores: np.ndarray) -> dict[str, dict[str, float]]:
    """Catch per variant at thresholds holding 1% and 2% of the fine copies (pooled out-of-fold scores)."""
    fine = scores[:, [EVAL_NAMES.index(n) for n in FINE]].ravel()
    limits = {"1%": float(np.quantile(fine, 0.99)), "2%": float(np.quantile(fine, 0.98))}
    names = EVAL_NAMES[: scores.shape[1]]
    return {
        name: {fr: float((scores[:, j] > t).mean()) for fr, t in limits.items()} for j, name in enumerate(names)
    } | {"_thresholds": limits}


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    print(f"{'variant':34s}" + "".join(f"{n + ' @1%':>16s}{'@2%':>7s}" for n in names))
    for row in EVAL_NAMES:
        cells = [results[n].get(row) for n in names]
        print(
            f"{row:34s}" + "".join(f"{100 * c['1%']:16.1f}{100 * c['2%']:7.1f}" if c else f"{'-':>23s}" for c in cells)
        )


def grid_mean(result: dict, fr: str = "1%") -> float:
    return float(np.mean([result[name][fr] for name in GRID_FAULTS]))


# --- commands ---------------------------------------------------------------------------------------------------


def cross_validate(args: argparse.Namespace) -> None:
    photos = sorted((args.data / "images").glob("*.jpg"))[: args.limit or None]
    fold = np.array(folds_of(photos))
    images, boxes = training_copies(photos)
    masks = lesion_masks(photos)
    started = time.time()
    inputs = cached_inputs(photos, args.inputs, args.workers or 1)
    print(f"evaluation inputs {inputs.shape} in {time.time() - started:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    evaluated = np.flatnonzero(fold < (FOLDS if args.joint else args.folds))  # joint: every fold at once
    results = {}
    for name in args.configs.split(","):
        config = replace(CONFIGS[name], **({"epochs": args.epochs} if args.epochs else {}))
        scores = np.zeros(inputs.shape[:2], np.float32)
        if args.joint:
            lesions = masks if config.min_reach > 0 else None
            print(f"{name}: every fold at once ({time.time() - started:.0f} s)", flush=True)
            models = train(images, boxes, config, args.device, args.workers, 0, lesions, fold.tolist())
        else:
            models = []
            for k in range(args.folds):
                print(f"{name}: fold {k + 1}/{FOLDS} ({time.time() - started:.0f} s)", flush=True)
                keep = [i for i in range(len(photos)) if fold[i] != k]
                lesions = [masks[i] for i in keep] if config.min_reach > 0 else None
                models += train(
                    [images[i] for i in keep], [boxes[i] for i in keep], config, args.device, args.workers, k, lesions
                )
        for k, model in enumerate(models):
            held = np.flatnonzero(fold == k)
            scores[held] = score(model, inputs[held], args.device, config.planes)
        results[name] = table(scores[evaluated])
        np.save(args.out / f"oof-{name}.npy", scores)
        print(f"{name}: grid faults caught at 1% {100 * grid_mean(results[name]):.1f}%", flush=True)
        (args.out / "cv.json").write_text(json.dumps(results, indent=1))  # after each: a cut-off run keeps some
    if len(results) > 1:
        names = args.configs.split(",")
        mean = np.mean([np.load(args.out / f"oof-{n}.npy") for n in names], axis=0)
        results["mean"] = table(mean[evaluated])
    print_table(results)
    for name, result in results.items():
        every = np.mean([result[fault]["1%"] for fault in GRID_FAULTS + EXTRA_FAULTS])
        print(
            f"{name}: caught at 1% of fine copies: grid faults {100 * grid_mean(result):.1f}%, all {100 * every:.1f}%"
        )


def fit(args: argparse.Namespace) -> None:
    import torch

    photos = sorted((args.data / "images").glob("*.jpg"))[: args.limit or None]
    name = args.config
    config = replace(CONFIGS[name], **({"epochs": args.epochs} if args.epochs else {}))
    images, boxes = training_copies(photos)
    print(f"fit {name} on {len(photos)} photos", flush=True)
    lesions = lesion_masks(photos) if config.min_reach > 0 else None
    (model,) = train(images, boxes, config, args.device, args.workers, seed=100, lesions=lesions)
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    saved = {"config": name, "width": config.width, "planes": config.planes, "state": state}
    torch.save(saved, args.out / f"{name}.pt")
    print(f"wrote {args.out / f'{name}.pt'}")


def export(args: argparse.Namespace) -> None:
    """One ONNX graph that averages the logits of the given networks (an ensemble is one call at serving)."""
    import torch

    class Mean(torch.nn.Module):
        def __init__(self, members: list) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x):
            return torch.stack([m(x) for m in self.members]).mean(0)

    members, names, planes = [], [], set()
    for path in args.weights:
        saved = torch.load(path, map_location="cpu")
        planes.add(saved.get("planes", 3))
        model = make_model(saved["width"], saved.get("planes", 3))
        model.load_state_dict(saved["state"])
        members.append(model.eval())
        names.append(saved["config"])
    if len(planes) > 1:
        raise SystemExit("export networks of one input at a time, then `merge` their graphs")
    x = torch.zeros(1, planes.pop(), INPUT_SIDE, INPUT_SIDE)
    torch.onnx.export(
        Mean(members).eval(), (x,), str(args.onnx), input_names=["image"], output_names=["logit"], dynamo=False
    )
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size // 1024} KiB), the mean of {', '.join(names)}")


def merge(args: argparse.Namespace) -> None:
    """One ONNX graph whose logit is the mean of the given graphs' logits: ensembles grow without the PyTorch weights
    of their earlier members (the shipped pair's stayed on the GPU machine). Each graph is a mean of its own
    networks, so equal pairs give the mean of all the networks. With `--mirror` the graph also judges the input's
    mirror image and answers the mean of the two: the same answer for a photo and its mirror image (a front
    camera's selfie is mirrored; a network trained with flips still answers each a little differently). Graphs with
    and without the log-light plane mix: the merged graph takes four planes, and the others read the first three."""
    import onnx
    from onnx import compose, helper

    graphs = [compose.add_prefix(onnx.load(str(path)), f"m{k}/") for k, path in enumerate(args.graphs)]
    planes = [model.graph.input[0].type.tensor_type.shape.dim[1].dim_value for model in graphs]
    views = "views" if args.mirror else "image"
    nodes, initializers = [], []
    if len(set(planes)) > 1:  # the first three planes (sRGB) for the members trained without the fourth
        consts = {"rgb_start": [0], "rgb_end": [3], "rgb_axis": [1]}
        initializers += [helper.make_tensor(k, onnx.TensorProto.INT64, [1], v) for k, v in consts.items()]
        nodes.append(helper.make_node("Slice", [views, "rgb_start", "rgb_end", "rgb_axis"], ["views_rgb"]))
    for model, own_planes in zip(graphs, planes, strict=True):
        own_input = model.graph.input[0].name
        shared = views if own_planes == max(planes) else "views_rgb"
        for node in model.graph.node:  # every member reads the one shared input
            node.input[:] = [shared if name == own_input else name for name in node.input]
        nodes += model.graph.node
        initializers += model.graph.initializer
        del model.graph.value_info[:]  # shapes traced at batch 1: the mirrored pair is a batch of 2
    outputs = [model.graph.output[0].name for model in graphs]
    count = helper.make_tensor("members", onnx.TensorProto.FLOAT, [], [float(len(graphs))])
    mean = "logit_views" if args.mirror else "logit"
    nodes += [
        helper.make_node("Sum", outputs, ["logit_sum"]),
        helper.make_node("Div", ["logit_sum", "members"], [mean]),
    ]
    if args.mirror:  # the photo and its mirror image (a front camera's selfie) as one batch; the mean of the two
        consts = {"flip_start": [-1], "flip_end": [-(2**62)], "flip_axis": [3], "flip_step": [-1], "batch_axis": [0]}
        initializers += [helper.make_tensor(k, onnx.TensorProto.INT64, [1], v) for k, v in consts.items()]
        nodes = [
            helper.make_node("Slice", ["image", "flip_start", "flip_end", "flip_axis", "flip_step"], ["mirrored"]),
            helper.make_node("Concat", ["image", "mirrored"], [views], axis=0),
            *nodes,
            helper.make_node("ReduceMean", [mean, "batch_axis"], ["logit"], keepdims=1),
        ]
    image = helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, max(planes), INPUT_SIDE, INPUT_SIDE])
    logit = helper.make_tensor_value_info("logit", onnx.TensorProto.FLOAT, [1, 1])
    graph = helper.make_graph(nodes, "lighting_ensemble", [image], [logit], [*initializers, count])
    model = helper.make_model(graph, opset_imports=graphs[0].opset_import, ir_version=graphs[0].ir_version)
    onnx.checker.check_model(model)
    onnx.save(model, str(args.onnx))
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size // 1024} KiB), the mean of {len(graphs)} graphs")


def paired_catch(
    base: np.ndarray,
    other: np.ndarray,
    rows: tuple[str, ...],
    draws: int = 2000,
    seed: int = 0,
    mean_name: str = "grid mean",
) -> dict[str, tuple[float, float, float]]:
    """Out-of-fold catch of `other` minus `base` per row, each at the logit refusing 1% of its own fine copies, with a
    95% interval from resampling photos (both configurations' copies of a photo drawn together): (difference, low,
    high) in points; `mean_name` is the mean over `rows`. The thresholds are held at the whole sample's: re-choosing
    them in every draw biases the interval (the top 1% of fine copies sit in ~15 photos, which a draw often leaves
    out), so the interval is the photos' spread at those thresholds, not the thresholds' own. Photos are the unit,
    since a photo's copies are not independent; 500 fit-sample photos resolve a row to 0.2 points."""
    columns = [EVAL_NAMES.index(r) for r in rows]
    fine = [EVAL_NAMES.index(n) for n in FINE]
    caught = [
        (scores[:, columns] > np.quantile(scores[:, fine].ravel(), 0.99)).astype(np.float64) for scores in (base, other)
    ]
    per_photo = caught[1] - caught[0]  # photos x rows: +1 caught by `other` alone, -1 by `base` alone
    per_photo = np.column_stack([per_photo, per_photo.mean(axis=1)])
    rng = np.random.default_rng(seed)
    n = len(per_photo)
    spread = np.array([per_photo[rng.integers(0, n, n)].mean(axis=0) for _ in range(draws)])
    point = 100 * per_photo.mean(axis=0)
    low, high = 100 * np.percentile(spread, [2.5, 97.5], axis=0)
    names = (*rows, mean_name)
    return {name: (float(point[j]), float(low[j]), float(high[j])) for j, name in enumerate(names)}


def compare(args: argparse.Namespace) -> None:
    """Out-of-fold scores of a base and a candidate side by side (each one `cv` configuration, or several averaged as
    the served graph averages its networks): a recipe judged on the 500 fit-sample photos rather than on the 142 of
    selection, at 0.2 points a photo. Judge the ensemble that would ship: in session 22, cv of `base-sw` alone against
    `base-s` said -7.8 points of frame side light where the four-network graphs differed by -1.1 on report+holdout.
    Prints each side's catch at 1% of fine copies and the paired difference with its interval."""
    sides = [[np.load(path) for path in paths] for paths in (args.base, args.other)]
    shapes = {scores.shape for side in sides for scores in side}
    if len(shapes) > 1:
        raise SystemExit(f"scores of different photos or variants: {sorted(shapes)}")
    base, other = (np.mean(side, axis=0) for side in sides)  # an ensemble's logit is its members' mean, as served
    a, b = table(base), table(other)
    names = ["+".join(path.stem.removeprefix("oof-") for path in paths) for paths in (args.base, args.other)]
    print(f"{'variant':34s}{names[0]:>16s}{names[1]:>16s}   difference [95%], points")
    for group, mean_name in ((GRID_FAULTS, "grid mean"), (CASTS, "casts' mean")):
        rows = tuple(r for r in group if EVAL_NAMES.index(r) < base.shape[1])
        if not rows:  # scores made before these columns were added
            continue
        if group is CASTS:
            print("fine copies under a colour cast, refused by the network (lower is better):")
        for row, (d, lo, hi) in paired_catch(base, other, rows, args.draws, mean_name=mean_name).items():
            left, right = (100 * (t[row]["1%"] if row in t else np.mean([t[r]["1%"] for r in rows])) for t in (a, b))
            print(f"{row:34s}{left:16.1f}{right:16.1f}   {d:+.1f} [{lo:+.1f}, {hi:+.1f}]")


def plot(args: argparse.Namespace) -> None:
    """Out-of-fold catch against false rejects of fine copies, per configuration (from `cv`'s saved scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = args.configs.split(",")
    scores = {n: np.load(args.out / f"oof-{n}.npy") for n in names}
    scores["mean"] = np.mean([scores[n] for n in names], axis=0)
    fine_cols = [EVAL_NAMES.index(n) for n in FINE]
    shares = np.linspace(0.0025, 0.05, 40)
    groups = {"the grid's faults (9)": GRID_FAULTS, "blob shadows and spot light (4)": EXTRA_FAULTS}
    fig, axes = plt.subplots(1, len(groups), figsize=(11, 4), sharey=True)
    for ax, (title, faults) in zip(axes, groups.items(), strict=True):
        cols = [EVAL_NAMES.index(n) for n in faults]
        for name, s in scores.items():
            limits = np.quantile(s[:, fine_cols].ravel(), 1 - shares)
            ax.plot(100 * shares, [100 * (s[:, cols] > t).mean() for t in limits], label=name)
        ax.axhline(98, color="#cc3311", lw=0.8)
        ax.axvline(1, color="grey", lw=0.6, ls=":")
        ax.set(title=title, xlabel="fine copies refused by the network (%)", ylim=(50, 100.5))
    axes[0].set_ylabel("faults caught, out of fold (%)")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.plot)


def threshold(args: argparse.Namespace) -> None:
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    sweep_threshold(
        rows, "max_lighting_logit", ("uneven_lighting",), args.budget, args.high, args.low, args.step, args.plot
    )


def threshold_arguments(p: argparse.ArgumentParser, measures: Path, budget: float, high: float, low: float) -> None:
    """The options of a network's `threshold` command (`sweep_threshold`), with that network's defaults."""
    p.add_argument("--measures", type=Path, nargs="+", default=[measures])
    p.add_argument("--budget", type=float, default=budget, help="points of false rejects the network may add")
    p.add_argument("--high", type=float, default=high)
    p.add_argument("--low", type=float, default=low)
    p.add_argument("--step", type=float, default=0.25)
    p.add_argument("--plot", type=Path, help="draw the sweep (PNG) here")


def mean_catch(catch: dict[str, float]) -> str:
    """The mean catch in percent, or "-" for a network judged on no fault rows of the grid (the content network)."""
    return f"{100 * np.mean(list(catch.values())):.1f}" if catch else "-"


def sweep_threshold(
    rows: list[dict],
    name: str,
    labels: tuple[str, ...],
    budget: float,
    high: float,
    low: float,
    step: float,
    plot: Path | None = None,
) -> float:
    """Choose a network's threshold (`Thresholds.<name>`) on the *selection* part of valid only (the report part
    is not read): the lowest at which the whole gate refuses at most `budget` points more of the good photos and
    copies than without the network. Prints the sweep: false rejects and the catch of the faults labelled
    `labels` (`calibrate_quality_gate.caught`: motion blur refused as `blurry` counts); `plot` draws it."""
    from bench.calibrate_quality_gate import caught
    from quality_gate import ood
    from quality_gate.policy import Thresholds, judge

    rows = [r for r in rows if r["set"] == "valid" and r["part"] == "selection"]
    stats = ood.load_stats()
    for row in rows:
        row["measures"]["ood_distance"] = ood.ood_distance(row["measures"], stats)
    fine = [r for r in rows if r["label"] is None]
    faults = sorted({r["kind"] for r in rows if r["label"] in labels})

    def sweep(limit: float) -> tuple[float, dict[str, float]]:
        t = Thresholds(**{name: limit})
        refused = np.mean([not judge(r["measures"], t).accepted for r in fine])
        catch = {
            kind: float(np.mean([caught(r, judge(r["measures"], t)) for r in rows if r["kind"] == kind]))
            for kind in faults
        }
        return float(refused), catch

    base, base_catch = sweep(math.inf)
    print(f"{len(fine)} good rows on selection; false rejects without the network {100 * base:.2f}%")
    print(
        f"{'logit':>6s} {'FR %':>6s} {'mean':>6s} "
        + " ".join(f"{k.replace('lesion ', 'L.')[:18]:>18s}" for k in faults)
    )
    print(
        f"{'none':>6s} {100 * base:6.2f} {mean_catch(base_catch):>6s} "
        + " ".join(f"{100 * base_catch[k]:18.1f}" for k in faults)
    )
    chosen, points = math.inf, []
    for limit in np.arange(high, low - 1e-9, -step):
        refused, catch = sweep(float(limit))
        points.append((float(limit), refused, catch))
        print(
            f"{limit:6.2f} {100 * refused:6.2f} {mean_catch(catch):>6s} "
            + " ".join(f"{100 * catch[k]:18.1f}" for k in faults)
        )
        if refused - base <= budget / 100:
            chosen = float(limit)
    print(f"chosen {name} = {chosen:.2f} (budget +{budget} points of false rejects on selection)")
    if plot:
        plot_sweep(points, (base, base_catch), name, chosen, plot)
    return chosen


def plot_sweep(
    points: list[tuple[float, float, dict[str, float]]],
    without: tuple[float, dict[str, float]],
    name: str,
    chosen: float,
    path: Path,
) -> None:
    """Each fault's catch against the gate's false rejects on selection as the threshold falls; the gate without
    the network and the chosen threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    refused = [100 * p[1] for p in points]
    for ax in axes:
        for kind in without[1]:
            line = ax.plot(refused, [100 * p[2][kind] for p in points], marker=".", label=kind)
            ax.plot([100 * without[0]], [100 * without[1][kind]], marker="o", mfc="none", color=line[0].get_color())
        ax.axvline(100 * without[0], color="grey", lw=0.6, ls=":")
        for limit, fr, _ in points:
            if limit == chosen:
                ax.axvline(100 * fr, color="black", lw=0.8, ls="--", label=f"chosen {name} = {chosen:.2f}")
        ax.axhline(98, color="#cc3311", lw=0.8)
        ax.set(xlabel="good selection photos and copies refused by the gate (%)")
    axes[0].set(ylabel="caught on selection (%)", title="every threshold")
    axes[1].set(xlim=(100 * without[0] - 0.2, 100 * without[0] + 2.0), ylim=(85, 100.5), title="near the budget")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{name}: threshold sweep on selection (open circles: the gate without the network)", fontsize=10)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, default=Path(".gpu/lighting"))
    for command in ("cv", "fit"):
        p = sub.add_parser(command)
        p.add_argument("--data", type=Path, default=Path(".gpu/lighting"))
        p.add_argument("--out", type=Path, default=Path("var/gate/lighting-cv"))
        p.add_argument("--device", default="cpu")
        p.add_argument("--workers", type=int, default=0)
        p.add_argument("--epochs", type=int, default=0, help="override the configuration's (a quick try)")
        p.add_argument("--limit", type=int, default=0, help="first N photos only (a quick try)")
        if command == "cv":
            p.add_argument("--configs", default="base,no-extra")
            p.add_argument("--folds", type=int, default=FOLDS, help="run only the first K folds (a quick try)")
            p.add_argument("--inputs", type=Path, help="keep the evaluation copies here (.npy) and reuse them")
            p.add_argument("--joint", action="store_true", help="every fold's network from one stream of copies")
        else:
            p.add_argument("--config", default="base", choices=sorted(CONFIGS))
    p = sub.add_parser("export")
    p.add_argument("--weights", type=Path, nargs="+", required=True)
    p.add_argument("--onnx", type=Path, default=MODEL_PATH)
    p = sub.add_parser("merge")
    p.add_argument("--graphs", type=Path, nargs="+", required=True, help="ONNX graphs (each a mean of networks)")
    p.add_argument("--onnx", type=Path, default=MODEL_PATH)
    p.add_argument("--mirror", action="store_true", help="judge the input and its mirror image, answer the mean")
    p = sub.add_parser("compare", help="two cv runs' out-of-fold scores, paired by photo")
    p.add_argument("--base", type=Path, nargs="+", required=True, help="oof-<config>.npy (several: their ensemble)")
    p.add_argument("--other", type=Path, nargs="+", required=True, help="the same for the candidate")
    p.add_argument("--draws", type=int, default=2000)
    p = sub.add_parser("plot")
    p.add_argument("--out", type=Path, default=Path("var/gate/lighting-cv"), help="cv's folder of scores")
    p.add_argument("--configs", default="base,no-extra")
    p.add_argument("--plot", type=Path, default=Path("docs/figures/lighting_cnn_cv.png"))
    threshold_arguments(sub.add_parser("threshold"), Path("var/gate/m2-valid.json"), budget=0.5, high=4.0, low=-1.0)
    args = parser.parse_args(argv)
    {
        "threshold": lambda: threshold(args),
        "plot": lambda: plot(args),
        "compare": lambda: compare(args),
        "pack": lambda: pack(args.out),
        "cv": lambda: cross_validate(args),
        "fit": lambda: fit(args),
        "export": lambda: export(args),
        "merge": lambda: merge(args),
    }[args.command]()


if __name__ == "__main__":
    main()
