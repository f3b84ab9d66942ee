"""Cache one serving call per photo of a labelled split (evidence, embedding, findings) in an `.npz`.

    nice .venv/bin/python bench/collect_evidence.py --split train --out var/grader/evidence-train.npz

The same cache `skintrouble evaluate --refit-grader --evidence` writes and reads (same meta), so a valid cache made
here is reused by evaluate; the train cache feeds the embedding OOD statistics and the train-fitted probe study.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from detector import grader_fit
from detector.evaluation import load_labelled_images
from detector.onnx_runtime import Detector

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets/acne04"))
    parser.add_argument("--model", type=Path, default=REPO / "detector" / "weights")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "cache" / "models")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every", type=int, default=1, help="every n-th photo (sorted by name): a subsample")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    detector = Detector.load(args.model, args.cache, threads=args.threads)
    images, _ = load_labelled_images(args.data, args.split)
    images = sorted(images, key=lambda item: item.path.name)[:: args.every]
    started = time.time()

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            print(f"{done}/{total} {(time.time() - started) / done:.2f} s/photo", file=sys.stderr, flush=True)

    records = grader_fit.collect(detector, images, progress)
    meta = {"serving": grader_fit.serving_fingerprint(detector.card), "split": args.split, "every": args.every}
    grader_fit.save_records(records, args.out, meta)
    print(args.out)


if __name__ == "__main__":
    main()
