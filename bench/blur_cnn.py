"""Train the gate's blur CNN (`quality_gate/blur_cnn.py`) and choose its threshold on selection (issue 12).

    nice .venv/bin/python bench/lighting_cnn.py pack --out .gpu/lighting          # the fit sample (shared)
    .venv/bin/python bench/blur_cnn.py fit --data .gpu/lighting --configs w8,w16 --device cuda --workers 15
    .venv/bin/python bench/blur_cnn.py export --weights var/gate/blur/w8.pt
    nice .venv/bin/python bench/gate_measure.py --sets valid --out var/gate/m-valid.json   # the new measure
    .venv/bin/python bench/blur_cnn.py threshold --measures var/gate/m-valid.json          # selection part only

Protocol. Only the gate's fit sample is read for training (500 `train` photos, `gate_measure.fit_sample`), so the
holdout and `valid` stay unseen. The configurations are fixed before any figure (rules of 2026-11-28, issue 12's
note): the threshold of each is the lowest logit at which the whole gate refuses at most `--budget` points more of
selection's good rows; the width is picked on selection by the catch of its six blur rows at that threshold.

Training copies go through the serving path (the 640 px working copy, the face region the gate judges focus on,
`patch_input`), so the network sees what it will judge. A fault half the time: a Gaussian blur of sigma 2-4.5 or a
motion blur of 12-32 px in any direction; otherwise fine: as is, JPEG, sharpening, a slight blur (sigma <= 0.7), a
slight shake (<= 4 px) or a down-and-up scaling to 0.6-1.0x (a crop enlarged). Then for both: an exposure and a
skin-tone shift, flips, quarter turns, and half the time sensor noise and JPEG after everything (a phone's), so
noise says nothing of the label. Blur between (sigma 0.7-2, 4-12 px) is never shown: the grid's sigma 1 is a mild
case the gate need not refuse.

What ships (2026-11-28): `w8`, both widths fitted together on a lent H200 (12 epochs of 8 copies a photo, 200 s with
15 loader workers). Rules fixed before the figures (issue 12's note), selection only: each width's threshold by the
sweep above with a 0.3-point budget (w8 3.25, w16 2.75: false rejects 1.71% -> 1.91% each); the mean catch of the six
blur rows (sigma 2, 3, 2 with noise and JPEG, motion 12 px, with noise and JPEG, 25 px) 99.18% for both against the
shipped gate's 98.13%, a tie, so the narrower; it ships since that is at least a point above, and the capture copies
(`gate_capture.py`: 41 of 1704 refused, 37 before) and the enlargements (`gate_enlarged.py`: unchanged) stayed within
the bounds asked. Read once afterwards, report / holdout: sigma 2 99.3% / 98.8% (before: 99.3% / 96.7%), with noise
and JPEG 99.3% / 96.1% (97.9% / 84.3%), motion 12 px 98.6% / 97.6% (97.9% / 96.9%), with noise and JPEG 93.6% / 92.9%
(91.5% / 89.8%); good photos and copies refused 1.8% / 4.3% (1.5% / 4.3%), as they are 2.1% / 2.2% (unchanged).
Hiding the network's `blurry` under an exposure code was tried after the choice and lost one selection row (the
mean fell to 99.07%), so the precedence stayed as the rule judged it.
Refitted on 2026-11-29 with the exact smear (`gate_data.motion_kernel`), the same recipe on the CPU (1301 s, one
worker): did not ship by the rules fixed first (selection: the six rows' mean 98.48% -> 98.37%, every photo in twelve
directions 97.8% -> 97.5%; docs/quality_gate.md, "How near the motion misses are").
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from bench import gate_data as gd
from bench.gate_measure import load_rgb
from bench.lighting_cnn import make_model, optimise, sweep_threshold, threshold_arguments
from quality_gate.blur_cnn import MODEL_PATH, PATCH, PATCHES, patch_input
from quality_gate.measures import max_channel, working_copies
from quality_gate.policy import Thresholds, focus_regions
from quality_gate.skin import skin_mask

BLUR_LABELS = ("blurry", "motion_blur")


@dataclass(frozen=True)
class Config:
    width: int = 8
    epochs: int = 12
    per_photo: int = 8  # training copies of each photo per epoch
    lr: float = 3e-3


CONFIGS: dict[str, Config] = {"w8": Config(width=8), "w16": Config(width=16)}


def served_patches(image: np.ndarray) -> np.ndarray:
    """What the gate feeds the network for this photo (`policy.image_measures`: working copy, face, patches)."""
    t = Thresholds()
    work, half = working_copies(image, t.analysis_side)
    y = cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2GRAY)
    _, face = focus_regions(skin_mask(half, t.min_skin_fraction, max_channel(half)), y.shape, t)
    return patch_input(y, face)


def blur_fault(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Focus blur (sigma 2-4.5) or a shake (12-32 px, any direction): the grid's faults and beyond."""
    if rng.random() < 0.5:
        return gd.gaussian_blur(rng.uniform(2.0, 4.5))(image)
    return gd.motion_blur(int(rng.integers(12, 33)), rng.uniform(0.0, 180.0))(image)


def fine_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy a dermatologist could still use: as is, JPEG, sharpened, barely softened or shaken, or a crop enlarged."""
    kind = int(rng.integers(6))
    if kind == 1:
        return gd.jpeg(image, int(rng.integers(50, 95)))
    if kind == 2:
        return gd.sharpen(rng.uniform(0.3, 1.5))(image)
    if kind == 3:
        return gd.gaussian_blur(rng.uniform(0.3, 0.7))(image)
    if kind == 4:
        return gd.motion_blur(int(rng.integers(2, 5)), rng.uniform(0.0, 180.0))(image)
    if kind == 5:
        h, w = image.shape[:2]
        scale = rng.uniform(0.6, 1.0)
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return image


def jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What changes a photo without blurring it: exposure, skin tone, orientation; then a phone's noise and JPEG."""
    if rng.random() < 0.5:
        image = gd.exposure(rng.uniform(-1.5, 1.5))(image)
    if rng.random() < 0.15:
        image = gd.tone_shift(rng.uniform(-40.0, 8.0), rng.uniform(-2.0, 10.0))(image)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = np.ascontiguousarray(np.rot90(image, int(rng.integers(4))) if rng.random() < 0.3 else image)
    if rng.random() < 0.5:  # as `gd.noise_and_jpeg`, in float32 (training copies are made by the million)
        noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 5.0))
        image = gd.jpeg(np.clip(image + noise, 0, 255).astype(np.uint8), int(rng.integers(60, 95)))
    return image


class Copies:
    """Map-style dataset over the whole run (item i: a copy of photo i % n from its own seed): K patches, a label."""

    def __init__(self, images: list[np.ndarray], config: Config, seed: int) -> None:
        self.images, self.config, self.seed = images, config, seed

    def __len__(self) -> int:
        return len(self.images) * self.config.per_photo * self.config.epochs

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.float32]:
        rng = np.random.default_rng([self.seed, i])
        image = self.images[i % len(self.images)]
        label = rng.random() < 0.5
        image = jitter(blur_fault(image, rng) if label else fine_copy(image, rng), rng)
        x = served_patches(image)
        if len(x) < PATCHES:  # a batch needs K patches each: repeat the ones there are (none: a flat grey one)
            x = np.resize(x, (PATCHES, 1, PATCH, PATCH)) if len(x) else np.zeros((PATCHES, 1, PATCH, PATCH), np.float32)
        return x, np.float32(label)


def patch_mean_logit(model, x):
    """The measure as served: the mean of the network's logits over each photo's patches."""
    return model(x.flatten(0, 1)).view(x.shape[0], x.shape[1]).mean(1)


def fit(args: argparse.Namespace) -> None:
    import torch
    from torch.utils.data import DataLoader

    photos = sorted((args.data / "images").glob("*.jpg"))[: args.limit or None]
    names = args.configs.split(",")
    configs = [replace(CONFIGS[n], **({"epochs": args.epochs} if args.epochs else {})) for n in names]
    if len({(c.epochs, c.per_photo, c.lr) for c in configs}) > 1:
        raise SystemExit("configurations trained together must share epochs, copies and learning rate")
    images = [load_rgb(p) for p in photos]
    torch.manual_seed(0)
    models = [make_model(c.width, planes=1).to(args.device) for c in configs]
    data = Copies(images, configs[0], seed=200)
    loader = DataLoader(
        data,
        batch_size=min(64, len(data)),
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        pin_memory=args.device != "cpu",
    )
    started = time.time()
    print(f"fit {', '.join(names)} on {len(photos)} photos, {len(loader)} steps", flush=True)
    models = optimise(models, loader, configs[0].lr, args.device, patch_mean_logit)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, config, model in zip(names, configs, models, strict=True):
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save({"config": name, "width": config.width, "planes": 1, "state": state}, args.out / f"{name}.pt")
    print(f"wrote {', '.join(f'{n}.pt' for n in names)} to {args.out} in {time.time() - started:.0f} s")


def export(args: argparse.Namespace) -> None:
    """The network as ONNX, any number of patches in a batch (the gate averages their logits)."""
    import torch

    saved = torch.load(args.weights, map_location="cpu")
    model = make_model(saved["width"], 1)
    model.load_state_dict(saved["state"])
    x = torch.zeros(PATCHES, 1, PATCH, PATCH)
    torch.onnx.export(
        model.eval(),
        (x,),
        str(args.onnx),
        input_names=["patches"],
        output_names=["logit"],
        dynamic_axes={"patches": {0: "n"}, "logit": {0: "n"}},
        dynamo=False,
    )
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size // 1024} KiB), {saved['config']}")


def threshold(args: argparse.Namespace) -> None:
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    chosen = sweep_threshold(
        rows, "max_blur_logit", BLUR_LABELS, args.budget, args.high, args.low, args.step, args.plot
    )
    if args.out:
        args.out.write_text(json.dumps({"max_blur_logit": chosen}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit")
    p.add_argument("--data", type=Path, default=Path(".gpu/lighting"))
    p.add_argument("--out", type=Path, default=Path("var/gate/blur"))
    p.add_argument("--configs", default="w8,w16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--epochs", type=int, default=0, help="override the configurations' (a quick try)")
    p.add_argument("--limit", type=int, default=0, help="first N photos only (a quick try)")
    p = sub.add_parser("export")
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--onnx", type=Path, default=MODEL_PATH)
    p = sub.add_parser("threshold")
    threshold_arguments(p, Path("var/gate/m-valid.json"), budget=0.3, high=6.0, low=-2.0)
    p.add_argument("--out", type=Path, help="write the chosen threshold here as JSON")
    args = parser.parse_args(argv)
    {"fit": lambda: fit(args), "export": lambda: export(args), "threshold": lambda: threshold(args)}[args.command]()


if __name__ == "__main__":
    main()
