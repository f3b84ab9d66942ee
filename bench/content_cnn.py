"""Train the gate's content CNN (`quality_gate/content_cnn.py`), cross-validate it, choose its threshold (issue 12).

    .venv/bin/python bench/real_images.py fetch                                   # the real photos' wheels
    nice .venv/bin/python bench/content_cnn.py pack --out .gpu/content            # fit sample + development photos
    .venv/bin/python bench/content_cnn.py fit --data .gpu/content --device cuda --workers 15 --out var/gate/content
    .venv/bin/python bench/content_cnn.py cv --scores var/gate/content/oof.json --measures var/gate/m-real.json
    .venv/bin/python bench/content_cnn.py export --weights var/gate/content/final.pt
    nice .venv/bin/python bench/gate_measure.py --sets valid --out var/gate/m-valid.json   # with the new measure
    .venv/bin/python bench/content_cnn.py threshold --measures var/gate/m-valid.json       # selection part only
    .venv/bin/python bench/content_cnn.py plot --measures var/gate/m-valid.json var/gate/m-nonskin-real.json
    .venv/bin/python bench/content_cnn.py closeups --part selection [--graph other.onnx --threshold -1.0]
    .venv/bin/python bench/content_cnn.py closeups --part report holdout --plot docs/figures/content_closeups.png
    .venv/bin/python bench/content_cnn.py views --role report [--graph other.onnx --threshold -1.0]
    nice .venv/bin/python bench/content_cnn.py finetune --workers 1 --out var/gate/content-ft    # from the shipped graph
    .venv/bin/python bench/content_cnn.py relogit --measures var/gate/m-valid.json --graph other.onnx --out o.json
    .venv/bin/python bench/content_cnn.py families --measures o.json --threshold -1.0   # generated kinds' margins

Protocol (rules fixed before the figures: issue 12's note). Skin is the gate's fit sample only (500 `train`
photos, `gate_measure.fit_sample`), so `valid` and the holdout stay unseen; not skin is generated images of the
families the gate is fitted on (`gd.NON_SKIN` less `gd.HELD_OUT_FAMILIES`, seeds from `NEGATIVE_SEED`, apart from
the ones any bench judges), crops of the fit photos' backgrounds and the `development` real photos of
`bench/real_images.py` (the `report` ones are never read here). `fit` trains, on one stream of copies, one network
per fold and a final one on everything: fold k never sees the fit photos or the development sources of fold k (a
generated image belongs to no fold). Each fold network then scores its held-out development sources, through the
same 13 views the benches judge (`real_images.seeded_views`), and its held-out photos' good copies (as they are,
JPEG q70, the grid's five tone shifts); `cv` sets each fold's threshold where it refuses 1% of those good copies and
says how many development views the gate refuses with and without the network. The final network's threshold is
the lowest, in 0.25 steps, at which the whole gate refuses at most 0.3 points more of the good selection photos and
copies (`threshold`, the blur and lighting networks' rule).

Training copies are made at the half-size working copy's scale (long side `HALF`, what the network's input is
squeezed from). Skin: a crop of 35-100% of a fit photo's short side, of any aspect; a third of the time a fault the
gate refuses with another code (darker or brighter, focus or motion blur, side light or a cast shadow): the network
must not call a bad photo of skin "not skin". Not skin: a generated image, a background crop, or a crop of 15-100% of
a development photo. Then for both: exposure, a skin-tone shift (skin only), a colour cast, flips, quarter turns,
noise and JPEG.

What ships (2026-11-28): the 30-epoch final network (trained with its fold networks on a lent H200 in 6 min, 15 loader
workers), threshold -0.50. Rules and figures: issue 12's note and docs/quality_gate.md, "Content network". The development views
refused by the gate with each fold's network added at that fold's threshold: 99.8% (the gate alone 96.3%; 12 epochs
97.6%). A threshold high enough for every code-made photo of `detector.synthetic` (seeds 2000-2039) to pass, judged the
same way per fold, caught 97.1%, short of the 99.3% the rule asked, so it did not ship. The network's code is judged
only when no other quality code speaks (`policy.judge`): allowed to hide them, it took two lesion shadows 6 stops deep
on selection for "not skin".

Close-ups (`closeups`: crops of good photos centred on the lesions, 100-15% of each side, the network read alone): the
tightest are often taken for something else (15%: 25 of 141 report photos above the threshold). `finetune` trains the
shipped network on (its graph read back by `from_onnx`, batch norm folded) with skin crops from `--least-skin`: tried
on the CPU (2026-11-28, 4 and 8 epochs, rules fixed first on selection: docs/quality_gate.md, "Close-ups"), it cut those refusals
from 24 to 7-8 of 142 on selection but moved generated fur, a family it never trained on, 2 logits toward skin, so it
did not ship. Trained from the start with close-ups instead (2026-11-28, a lent H200, 331 s: `fit --device cuda
--workers 15 --epochs 30 --least-skin 0.12 --least-bank 0.15`; rules G1 in issue 12's note), it did not ship either:
threshold -0.75 by the rule, close-ups above it on selection 1 / 1 / 4 / 6 of 142 at 50 / 35 / 25 / 15% (the rule asked
at most 2 at 25%), generated fur median logit -0.69 (margin 0.06, rule 2), development views with fold networks 98.9%
(rule 99.5%). Read after: three report views of real cheetahs passed it.

`relogit` measures a candidate network without measuring everything again: it makes each cached row's image again
(`gate_measure.set_images`) and runs the candidate on it (3.5 min for valid on one core, against 7-15 min); with the
shipped graph and `--check` it gives every cached logit back exactly, which is checked before a candidate is read.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench import gate_data as gd
from bench import real_images
from bench.figures import save_figure
from bench.gate_measure import degrade, load_rgb
from bench.lighting_cnn import FOLDS, colour_cast, folds_of, make_model, optimise, score
from bench.lighting_cnn import pack as pack_fit_sample
from bench.relogit import graph_logits, served_half
from quality_gate.content_cnn import INPUT_SIDE, MODEL_PATH, model_input
from quality_gate.policy import Thresholds

HALF = 320  # long side of the half-size working copy of a 640 px photo
NEGATIVE_SEED = 100_000  # generated training images use seeds from here (benches judge 0.. and 1000..)
FIT_FAMILIES = tuple(f for f in gd.NON_SKIN if f not in gd.HELD_OUT_FAMILIES)
GOOD_COPIES = ("good", "good, JPEG q70", *gd.TONE_SHIFTS)  # a fold's held-out skin, for its threshold
GOOD_SHARE = 0.01  # of those refused at a fold's threshold


@dataclass(frozen=True)
class Config:
    width: int = 16
    epochs: int = 12
    per_photo: int = 16  # training copies per fit photo per epoch (as many not-skin copies besides)
    lr: float = 3e-3
    bank: int = 3000  # generated non-skin images made once, at HALF, and cropped from
    least_skin: float = 0.35  # the smallest skin crop, as a share of the photo's short side
    least_bank: float = 0.5  # the smallest crop of a generated non-skin image (close-up skin wants close-up non-skin)


def development_sources() -> list[real_images.Source]:
    return [s for s in real_images.SOURCES if s.role == "development"]


def real_folds(names: list[str]) -> dict[str, int]:
    """Fold of each development source: sorted names, round robin after a seeded shuffle (as `folds_of`)."""
    names = sorted(names)
    order = np.random.default_rng(1).permutation(len(names))
    return {names[index]: rank % FOLDS for rank, index in enumerate(order)}


def pack(out: Path) -> None:
    """The fit sample (`lighting_cnn.pack`) and the development real photos as PNG, named by source: what travels."""
    pack_fit_sample(out)
    (out / "real").mkdir(parents=True, exist_ok=True)
    for source in development_sources():
        cv2.imwrite(str(out / "real" / f"{source.name}.png"), cv2.cvtColor(real_images.load(source), cv2.COLOR_RGB2BGR))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {len(development_sources())} development photos into {out / 'real'}; {size / 2**20:.1f} MiB in all")


# --- training copies -----------------------------------------------------------------------------------------------


def at_half(image: np.ndarray) -> np.ndarray:
    """`image` with its long side `HALF` (enlarged or reduced), as the working copy's half would show it."""
    h, w = image.shape[:2]
    scale = HALF / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def at_most(image: np.ndarray, side: int) -> np.ndarray:
    """`image` reduced to a long side of at most `side` (a crop of it keeps the detail a phone upload would)."""
    scale = side / max(image.shape[:2])
    return image if scale >= 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def random_crop(image: np.ndarray, rng: np.random.Generator, least: float) -> np.ndarray:
    """A crop of `least`-100% of the short side, aspect 3:5 to 5:3."""
    h, w = image.shape[:2]
    side = rng.uniform(least, 1.0) * min(h, w)
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1 / 0.6))))
    ch, cw = min(h, max(8, round(side / np.sqrt(aspect)))), min(w, max(8, round(side * np.sqrt(aspect))))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return image[y : y + ch, x : x + cw]


def skin_fault(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fault another code answers for: the photo is still of skin."""
    kind = int(rng.integers(6))
    if kind == 0:
        return gd.exposure(rng.uniform(-3.5, -1.5))(image)
    if kind == 1:
        return gd.exposure(rng.uniform(1.0, 3.0))(image)
    if kind == 2:
        return gd.gaussian_blur(rng.uniform(1.0, 3.0))(image)
    if kind == 3:
        return gd.motion_blur(int(rng.integers(4, 15)), rng.uniform(0.0, 180.0))(image)
    if kind == 4:
        return gd.side_light(rng.uniform(2.0, 5.0), rng.uniform(0.0, 360.0))(image)
    return gd.cast_shadow(rng.uniform(2.0, 6.0), rng.uniform(0.0, 360.0))(image)


def jitter(image: np.ndarray, rng: np.random.Generator, skin: bool) -> np.ndarray:
    """What any phone photo may carry, skin or not: exposure, tone (skin), a cast, orientation, noise and JPEG."""
    if rng.random() < 0.5:
        image = gd.exposure(rng.uniform(-1.5, 1.5))(image)
    if skin and rng.random() < 0.3:
        image = gd.tone_shift(rng.uniform(-40.0, 8.0), rng.uniform(-2.0, 10.0))(image)
    if rng.random() < 0.25:
        image = colour_cast(rng)(image)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.3:
        image = np.rot90(image, int(rng.integers(1, 4)))
    image = np.ascontiguousarray(image)
    if rng.random() < 0.5:
        noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 4.0))
        image = gd.jpeg(np.clip(image + noise, 0, 255).astype(np.uint8), int(rng.integers(60, 95)))
    return image


def _bank_image(seed: int) -> np.ndarray:
    family = FIT_FAMILIES[seed % len(FIT_FAMILIES)]
    return at_half(gd.non_skin(family, NEGATIVE_SEED + seed))


class Copies:
    """Map-style dataset over the whole run: item i is a skin copy (even i) or a not-skin copy (odd i), with the fold
    of the photo it came from (-1: a generated image, in every fold's training)."""

    def __init__(
        self, skin: list[np.ndarray], skin_folds: list[int], real: list[np.ndarray], real_folds: list[int],
        bank: list[np.ndarray], config: Config, seed: int,
    ) -> None:  # fmt: skip
        self.skin, self.skin_folds, self.real, self.real_folds = skin, skin_folds, real, real_folds
        self.bank, self.config, self.seed = bank, config, seed

    def __len__(self) -> int:
        return 2 * len(self.skin) * self.config.per_photo * self.config.epochs

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.float32, np.int64]:
        rng = np.random.default_rng([self.seed, i])
        if i % 2 == 0:
            k = int(rng.integers(len(self.skin)))
            image = at_half(random_crop(self.skin[k], rng, self.config.least_skin))
            if rng.random() < 1 / 3:
                image = skin_fault(image, rng)
            return model_input(jitter(image, rng, skin=True))[0], np.float32(0), np.int64(self.skin_folds[k])
        pick, fold = rng.random(), -1
        if pick < 0.4 or not self.real:
            image = random_crop(self.bank[int(rng.integers(len(self.bank)))], rng, self.config.least_bank)
        elif pick < 0.55:
            k = int(rng.integers(len(self.skin)))
            crops = gd.background_crops(self.skin[k], rng, 1)
            image, fold = (
                (crops[0], self.skin_folds[k]) if crops else (self.bank[int(rng.integers(len(self.bank)))], -1)
            )
        else:
            k = int(rng.integers(len(self.real)))
            image, fold = random_crop(self.real[k], rng, 0.15), self.real_folds[k]
        return model_input(jitter(at_half(image), rng, skin=False))[0], np.float32(1), np.int64(fold)


# --- evaluation through the serving path ----------------------------------------------------------------------------


def served_input(image: np.ndarray) -> np.ndarray:
    """What the gate feeds the network (`policy.image_measures`: the half-size working copy of the photo inside any
    uniform frame)."""
    return model_input(served_half(image))[0]


def _good_inputs(job: tuple[int, str]) -> np.ndarray:
    index, path = job
    image = load_rgb(Path(path))
    return np.stack([served_input(degrade(name, image, index, None)) for name in GOOD_COPIES])


def _view_inputs(path: str) -> np.ndarray:
    """The 13 views every bench judges of one development photo (`real_images.named_views`: the same seed)."""
    return np.stack([served_input(view) for _, view in real_images.named_views(Path(path).stem, load_rgb(Path(path)))])


# --- commands --------------------------------------------------------------------------------------------------------


def packed(data: Path, limit: int = 0) -> tuple[list[Path], list[Path]]:
    """The fit photos (the first `limit`, 0: all) and the development real photos of a `pack` folder."""
    return sorted((data / "images").glob("*.jpg"))[: limit or None], sorted((data / "real").glob("*.png"))


def stream(photos: list[Path], reals: list[Path], bank: list[np.ndarray], config: Config, seed: int) -> Copies:
    """The stream of training copies over packed photos, each with its fold (`fit` and `finetune` train on it)."""
    by_name = real_folds([p.stem for p in reals])
    skin = [load_rgb(p) for p in photos]
    real = [at_most(load_rgb(p), 1280) for p in reals]
    return Copies(skin, folds_of(photos), real, [by_name[p.stem] for p in reals], bank, config, seed)


def fit(args: argparse.Namespace) -> None:
    """Fold networks and the final one, trained together on one stream of copies (each fold's loss masks its own
    photos out), then the out-of-fold scores `cv` reads."""
    import torch
    from torch.utils.data import DataLoader

    given = {"epochs": args.epochs, "bank": args.bank, "least_skin": args.least_skin, "least_bank": args.least_bank}
    config = Config(**{name: value for name, value in given.items() if value})
    photos, reals = packed(args.data, args.limit)
    skin_folds = folds_of(photos)
    by_name = real_folds([p.stem for p in reals])
    started = time.time()
    with multiprocessing.Pool(args.workers or 1) as pool:
        bank = pool.map(_bank_image, range(config.bank), chunksize=16)
        good = np.stack(pool.map(_good_inputs, list(enumerate(map(str, photos))), chunksize=4))
        views = np.stack(pool.map(_view_inputs, list(map(str, reals)), chunksize=1))
    print(
        f"bank {len(bank)}, good copies {good.shape}, views {views.shape} in {time.time() - started:.0f} s", flush=True
    )
    data = stream(photos, reals, bank, config, seed=300)
    loader = DataLoader(
        data, batch_size=256, shuffle=True, num_workers=args.workers, drop_last=True, pin_memory=args.device != "cpu"
    )
    torch.manual_seed(0)
    models = [make_model(config.width).to(args.device) for _ in range(FOLDS + 1)]  # folds 0..4, then the final one
    print(f"training {len(models)} networks, {len(loader)} steps", flush=True)

    def keep(k: int, fold):  # fold k's network never learns from fold k's photos and sources; the final one from all
        return (fold != k).float() if k < FOLDS else torch.ones_like(fold, dtype=torch.float32)

    models = optimise(models, loader, config.lr, args.device, keep=keep)
    args.out.mkdir(parents=True, exist_ok=True)
    oof: dict = {"views": {}, "good_folds": skin_folds}
    good_scores = np.zeros(good.shape[:2], np.float32)
    for k, model in enumerate(models):
        model.eval()
        name = f"fold{k}" if k < FOLDS else "final"
        state = {key: v.cpu() for key, v in model.state_dict().items()}
        torch.save({"config": name, "width": config.width, "state": state}, args.out / f"{name}.pt")
        if k == FOLDS:
            break
        held = np.flatnonzero(np.array(skin_folds) == k)
        good_scores[held] = score(model, good[held], args.device)
        for p, v in zip(reals, views, strict=True):
            if by_name[p.stem] == k:
                oof["views"][p.stem] = score(model, v[None], args.device)[0].tolist()
    oof["good"] = good_scores.tolist()
    oof["real_folds"] = by_name
    (args.out / "oof.json").write_text(json.dumps(oof))
    print(f"wrote {FOLDS + 1} networks and oof.json to {args.out} in {time.time() - started:.0f} s")


def from_onnx(path: Path):
    """The network of an exported graph as a trainable module (`make_model` without batch norm: the export folded it
    into the convolutions' weights and biases), equal to the graph to float rounding."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    (gemm,) = [node for node in graph.node if node.op_type == "Gemm"]
    model = make_model(
        int(weights[convs[0].input[1]].shape[0]), int(weights[convs[0].input[1]].shape[1]), batch_norm=False
    )
    layers = [m for m in model if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    with torch.no_grad():
        for layer, node in zip(layers, [*convs, gemm], strict=True):
            layer.weight.copy_(weights[node.input[1]])
            layer.bias.copy_(weights[node.input[2]])
    return model.eval()


def finetune(args: argparse.Namespace) -> None:
    """The shipped network (`--start`, its ONNX graph) trained on further on the same stream of copies as `fit`, with
    skin crops from `--least-skin` of the short side: the final network only (fold networks are not kept), saved for
    `export`."""
    import torch
    from torch.utils.data import DataLoader

    config = Config(epochs=args.epochs, lr=args.lr, least_skin=args.least_skin, bank=args.bank or Config.bank)
    photos, reals = packed(args.data, args.limit)
    started = time.time()
    with multiprocessing.Pool(args.workers or 1) as pool:
        bank = pool.map(_bank_image, range(config.bank), chunksize=16)
    data = stream(photos, reals, bank, config, seed=args.seed)
    loader = DataLoader(data, batch_size=256, shuffle=True, num_workers=args.workers, drop_last=True)
    torch.manual_seed(0)
    model = from_onnx(args.start).to(args.device)
    print(f"bank {len(bank)} in {time.time() - started:.0f} s; fine-tuning, {len(loader)} steps", flush=True)
    (model,) = optimise([model], loader, config.lr, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    state = {key: v.cpu() for key, v in model.state_dict().items()}
    saved = {"config": f"finetuned {config}", "width": config.width, "batch_norm": False, "state": state}
    torch.save(saved, args.out / "final.pt")
    print(f"wrote {args.out / 'final.pt'} in {time.time() - started:.0f} s")


CLOSE_UP_SHARES = (1.0, 0.5, 0.35, 0.25, 0.15)  # of each side of the photo


def close_up(image: np.ndarray, box: gd.Box | None, share: float) -> np.ndarray:
    """The crop of `share` of each side centred on the lesions' box (the frame's centre without one), kept inside the
    frame: a close-up as our own hint asks for ("Fill the frame with the affected area")."""
    h, w = image.shape[:2]
    cx, cy = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) if box else (0.5, 0.5)
    cw, ch = max(8, round(w * share)), max(8, round(h * share))
    x0 = int(np.clip(round(cx * w - cw / 2), 0, w - cw))
    y0 = int(np.clip(round(cy * h - ch / 2), 0, h - ch))
    return np.ascontiguousarray(image[y0 : y0 + ch, x0 : x0 + cw])


def close_up_logits(part: str, graph: Path, limit: int) -> dict[float, np.ndarray]:
    """The graph's logit on each photo's close-ups of one part, by share of each side (`CLOSE_UP_SHARES`)."""
    from bench.gate_measure import part_photos

    logits: dict[float, list[float]] = {share: [] for share in CLOSE_UP_SHARES}
    for path in part_photos(part, limit):
        image, box = load_rgb(path), gd.lesion_box(gd.label_file(path))
        inputs = np.stack([served_input(close_up(image, box, share)) for share in CLOSE_UP_SHARES])
        for share, logit in zip(CLOSE_UP_SHARES, graph_logits(graph, inputs), strict=True):
            logits[share].append(logit)
    return {share: np.array(values) for share, values in logits.items()}


def close_ups(args: argparse.Namespace) -> None:
    """The network's logit on close-ups of good photos of each part (`CLOSE_UP_SHARES`), through the serving path,
    and how many lie above `--threshold`: would a close-up be refused as "not skin"? The crops are the 640 px photo's
    pixels, enlarged by the working copy, so softer than a phone's own close-up: the gate's blur codes would speak
    for them first and hide this code, so the network is read alone. `--plot` draws the share above the threshold
    by how much of the photo the close-up keeps, with 95% intervals."""
    from bench.intervals import wilson

    above: dict[str, dict[float, tuple[int, int]]] = {}
    for part in args.part:
        logits = close_up_logits(part, args.graph, args.limit)
        print(f"{part}: the network's logit on close-ups ({args.graph.name}), above {args.threshold}")
        above[part] = {}
        for share, v in logits.items():
            above[part][share] = (int((v > args.threshold).sum()), len(v))
            print(
                f"  {100 * share:5.0f}% of each side: {above[part][share][0]:3d} of {len(v)} above; "
                f"median {np.median(v):6.2f}, 90th percentile {np.quantile(v, 0.9):6.2f}, max {v.max():6.2f}"
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for part, counts in above.items():
            shares = sorted(counts)
            rates = [100 * counts[s][0] / counts[s][1] for s in shares]
            low, high = zip(*(wilson(*counts[s]) for s in shares), strict=True)
            x = [100 * s for s in shares]
            ax.plot(x, rates, marker="o", label=f"{part} ({counts[shares[0]][1]} photos)")
            ax.fill_between(x, [100 * v for v in low], [100 * v for v in high], alpha=0.15)
        ax.set(xlabel="close-up: share of each side of the photo kept (%)", ylabel="taken for not skin (%)")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([100 * s for s in CLOSE_UP_SHARES], [f"{100 * s:.0f}" for s in CLOSE_UP_SHARES])
        ax.set_title(f"Content network alone ({args.graph.name}) above {args.threshold} on close-ups of good photos",
                     fontsize=9)  # fmt: skip
        ax.legend(fontsize=8)
        save_figure(fig, args.plot)


def real_views(args: argparse.Namespace) -> None:
    """The network's logit alone on the 13 views every bench judges of each real non-skin photo of one role
    (`real_images.seeded_views`), and how many lie above `--threshold`: how a network other than the shipped one reads
    them, without measuring the whole gate again."""
    print(f"{args.role} photos: views above {args.threshold} ({args.graph.name})")
    for source in real_images.SOURCES:
        if source.role == args.role:
            inputs = np.stack([served_input(view) for _, view in real_images.seeded_views(source)])
            logits = graph_logits(args.graph, inputs)
            print(
                f"  {source.name:24s} {int((logits > args.threshold).sum()):2d} of {len(logits)}, min {logits.min():6.2f}"
            )


def relogit(args: argparse.Namespace) -> None:
    """A measures cache with `content_logit` from another graph (`bench/relogit.py`, which does it for either network):
    with the shipped graph and `--check` every cached logit comes back."""
    from bench.relogit import relogit as replace_logits

    replace_logits(args.measures, "content_logit", args.graph, args.out, args.check)


def families(args: argparse.Namespace) -> None:
    """Each kind of image's content logit in a measures cache (`relogit` writes a candidate's): the median, the
    lowest, and how far the median lies above `--threshold`. The margin of the generated families no network was
    trained on (`gd.HELD_OUT_FAMILIES`) says how a candidate reads textures it never saw."""
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    rows = [r for r in rows if r["set"] == args.set and r["part"] == args.part and "content_logit" in r["measures"]]
    kinds: dict[str, list[float]] = {}
    for r in rows:
        kinds.setdefault(r["kind"], []).append(r["measures"]["content_logit"])
    print(f"{args.set} {args.part}: content_logit by kind, threshold {args.threshold}")
    for kind, values in sorted(kinds.items()):
        v = np.array(values)
        held = " (never trained on)" if kind in gd.HELD_OUT_FAMILIES else ""
        print(
            f"  {kind:24s} {len(v):4d} rows, median {np.median(v):6.2f} (margin {np.median(v) - args.threshold:6.2f}),"
            f" lowest {v.min():6.2f}, above {int((v > args.threshold).sum())}{held}"
        )


def cross_validated(args: argparse.Namespace) -> None:
    """Each fold's threshold (1% of its held-out good copies) and the development views refused, by the gate as it
    stands (`gate_measure.py --sets real`, the verdicts of the measures cache) and with the fold's network added."""
    from quality_gate import ood
    from quality_gate.policy import judge

    oof = json.loads(args.scores.read_text())
    good, good_folds = np.array(oof["good"]), np.array(oof["good_folds"])
    limits = {k: float(np.quantile(good[good_folds == k].ravel(), 1 - GOOD_SHARE)) for k in range(FOLDS)}
    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    rows = [r for r in rows if r["set"] == "real" and r["part"] == "development"]
    stats, t = ood.load_stats(), Thresholds(max_content_logit=math.inf)  # the gate without the shipped network, which
    # saw every development photo
    by_source: dict[str, list[bool]] = {}
    for r in rows:  # each source's views, in view order
        r["measures"]["ood_distance"] = ood.ood_distance(r["measures"], stats)
        by_source.setdefault(r["photo"], []).append(not judge(r["measures"], t).accepted)
    gate, added, total = 0, 0, 0
    print(f"{'source':28s} {'fold':>4s} {'views':>5s} {'gate':>5s} {'+net':>5s}")
    for name, scores in sorted(oof["views"].items()):
        fold = oof["real_folds"][name]
        refused = by_source[name]
        net = np.array(scores) > limits[fold]
        both = np.array(refused) | net
        gate, added, total = gate + sum(refused), added + int(both.sum()), total + len(refused)
        print(f"{name:28s} {fold:4d} {len(refused):5d} {sum(refused):5d} {int(both.sum()):5d}")
    print("fold thresholds (1% of held-out good copies): " + ", ".join(f"{v:.2f}" for v in limits.values()))
    print(f"development views refused: gate {100 * gate / total:.1f}%, gate + fold network {100 * added / total:.1f}%"
          f" ({total} views)")  # fmt: skip


def export(args: argparse.Namespace) -> None:
    import torch

    saved = torch.load(args.weights, map_location="cpu")
    model = make_model(saved["width"], batch_norm=saved.get("batch_norm", True))
    model.load_state_dict(saved["state"])
    x = torch.zeros(1, 3, INPUT_SIDE, INPUT_SIDE)
    torch.onnx.export(model.eval(), (x,), str(args.onnx), input_names=["image"], output_names=["logit"], dynamo=False)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size // 1024} KiB), {saved['config']}")


def threshold(args: argparse.Namespace) -> None:
    from bench.lighting_cnn import sweep_threshold

    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    sweep_threshold(rows, "max_content_logit", (), args.budget, args.high, args.low, args.step, args.plot)


def plot(args: argparse.Namespace) -> None:
    """Where the shipped network's logit puts each kind of image, and the threshold: good valid photos and copies, the
    grid's faulty copies (other codes speak for those), generated non-skin, real photos of other things."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for path in args.measures for r in json.loads(path.read_text())]
    groups = {
        "valid selection: good photos and copies": lambda r: r["set"] == "valid" and r["part"] == "selection"
        and r["label"] is None,
        "valid selection: faulty copies": lambda r: r["set"] == "valid" and r["part"] == "selection"
        and r["label"] is not None,
        "valid report: good photos and copies": lambda r: r["set"] == "valid" and r["part"] == "report"
        and r["label"] is None,
        "generated non-skin (held-back seeds)": lambda r: r["set"] == "nonskin",
        "real non-skin, development (trained on)": lambda r: r["set"] == "real" and r["part"] == "development",
        "real non-skin, report": lambda r: r["set"] == "real" and r["part"] == "report",
    }  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 4.8))
    bins = np.linspace(-25, 35, 121)
    for label, member in groups.items():
        values = [r["measures"]["content_logit"] for r in rows if member(r) and "content_logit" in r["measures"]]
        if values:
            ax.hist(np.clip(values, bins[0], bins[-1]), bins, density=True, histtype="step", lw=1.4,
                    label=f"{label} ({len(values)})")  # fmt: skip
    limit = Thresholds().max_content_logit
    ax.axvline(limit, color="black", ls="--", lw=0.9, label=f"threshold {limit:.2f} (not skin above)")
    ax.set(xlabel="content_logit (larger: less like a photo of skin)", ylabel="density", yscale="log")
    ax.set_title("The content network's logit (bench/content_cnn.py plot)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    save_figure(fig, args.out)


def main(argv: list[str] | None = None) -> None:
    from bench.lighting_cnn import threshold_arguments

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, default=Path(".gpu/content"))
    p = sub.add_parser("fit")
    p.add_argument("--data", type=Path, default=Path(".gpu/content"))
    p.add_argument("--out", type=Path, default=Path("var/gate/content"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--epochs", type=int, default=0, help="override the configuration's (a quick try)")
    p.add_argument("--bank", type=int, default=0, help="override the generated bank's size (a quick try)")
    p.add_argument("--limit", type=int, default=0, help="first N photos only (a quick try)")
    p.add_argument("--least-skin", type=float, default=0.0, help="smallest skin crop (default: the configuration's)")
    p.add_argument("--least-bank", type=float, default=0.0, help="smallest generated non-skin crop (likewise)")
    p = sub.add_parser("finetune")
    p.add_argument("--data", type=Path, default=Path(".gpu/content"))
    p.add_argument("--start", type=Path, default=MODEL_PATH, help="the ONNX graph to train on from")
    p.add_argument("--out", type=Path, default=Path("var/gate/content-ft"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--least-skin", type=float, default=0.12, help="smallest skin crop, share of the short side")
    p.add_argument("--seed", type=int, default=400, help="of the stream of copies (another for a second round)")
    p.add_argument("--bank", type=int, default=0, help="override the generated bank's size (a quick try)")
    p.add_argument("--limit", type=int, default=0, help="first N photos only (a quick try)")
    p = sub.add_parser("closeups")
    p.add_argument("--part", nargs="+", default=["selection"], choices=("selection", "report", "holdout"))
    p.add_argument("--plot", type=Path, help="write the share above the threshold by close-up size (PNG) here")
    p.add_argument("--graph", type=Path, default=MODEL_PATH)
    p.add_argument("--threshold", type=float, default=Thresholds().max_content_logit)
    p.add_argument("--limit", type=int, default=500, help="holdout photos")
    p = sub.add_parser("views")
    p.add_argument("--role", default="report", choices=("development", "report"))
    p.add_argument("--graph", type=Path, default=MODEL_PATH)
    p.add_argument("--threshold", type=float, default=Thresholds().max_content_logit)
    p = sub.add_parser("relogit")
    p.add_argument("--measures", type=Path, required=True, help="a cache of valid, holdout, nonskin or real rows")
    p.add_argument("--graph", type=Path, default=MODEL_PATH)
    p.add_argument("--out", type=Path, help="the cache with the graph's content_logit (none: only compare)")
    p.add_argument("--check", action="store_true", help="fail unless the graph gives the cache's logits back")
    p = sub.add_parser("families")
    p.add_argument("--measures", type=Path, nargs="+", required=True)
    p.add_argument("--set", default="nonskin")
    p.add_argument("--part", default="selection")
    p.add_argument("--threshold", type=float, default=Thresholds().max_content_logit)
    p = sub.add_parser("cv")
    p.add_argument("--scores", type=Path, default=Path("var/gate/content/oof.json"))
    p.add_argument("--measures", type=Path, nargs="+", required=True)
    p = sub.add_parser("export")
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--onnx", type=Path, default=MODEL_PATH)
    p = sub.add_parser("threshold")
    threshold_arguments(p, Path("var/gate/m-valid.json"), budget=0.3, high=8.0, low=-2.0)
    p = sub.add_parser("plot")
    p.add_argument("--measures", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, default=Path("docs/figures/content_cnn.png"))
    args = parser.parse_args(argv)
    commands = {"pack": pack, "fit": fit, "finetune": finetune, "cv": cross_validated, "export": export}
    commands |= {"threshold": threshold, "closeups": close_ups, "views": real_views}
    commands |= {"plot": plot, "relogit": relogit, "families": families}
    command = commands[args.command]
    command(args.out) if args.command == "pack" else command(args)


if __name__ == "__main__":
    main()
