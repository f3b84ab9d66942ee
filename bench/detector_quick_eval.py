"""Quick serving-path check on ACNE04 valid: lesion-count MAE and grade accuracy at the card's settings.

    .venv/bin/python bench/detector_quick_eval.py --limit 50 --threads 2

Photos are spread evenly over the sorted valid list (so every grade appears); the reference count
is the number of labelled boxes, the reference grade the `levleN_` file-name prefix. Not a
substitute for `detector evaluate` (mAP, calibration): a minute-long smoke figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from detector.evaluation import grade_from_name, read_rgb
from detector.onnx_runtime import Detector

VALID = Path("/work/shared/datasets/acne04/valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("detector/weights"))
    parser.add_argument("--cache", type=Path, default=Path("var/cache/models"))
    parser.add_argument("--data", type=Path, default=VALID)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    detector = Detector.load(args.model, args.cache, threads=args.threads)
    photos = sorted((args.data / "images").glob("*.jpg"))
    picks = [photos[i] for i in np.unique(np.linspace(0, len(photos) - 1, args.limit).round().astype(int))]
    errors, hits, uncertainty = [], [], []
    confusion = np.zeros((4, 4), dtype=int)
    for path in picks:
        label_file = args.data / "labels" / f"{path.stem}.txt"
        truth = sum(1 for line in label_file.read_text().splitlines() if line.strip())
        grade = grade_from_name(path.name)
        detection = detector.predict(read_rgb(path))
        errors.append(abs(detection.lesion_count - truth))
        uncertainty.append(detection.uncertainty)
        if grade is not None:
            hits.append(detection.severity.grade == grade)
            confusion[grade, detection.severity.grade] += 1
    card = detector.card
    print(
        f"model {card.version}  operating_conf={card.operating_conf}  bands={list(card.grade_bands)}"
        f"  upscale={card.upscale}  tta_flip={card.tta_flip}"
    )
    print(f"photos {len(picks)}  count MAE {np.mean(errors):.2f}  grade accuracy {np.mean(hits):.3f}")
    print(f"uncertainty mean {np.mean(uncertainty):.3f}  max {np.max(uncertainty):.3f}")
    print("grade confusion (rows: levleN_ truth, cols: predicted)")
    for g, row in enumerate(confusion):
        print(f"  {g}: {' '.join(f'{v:3d}' for v in row)}")


if __name__ == "__main__":
    main()
