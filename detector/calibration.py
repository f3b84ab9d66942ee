"""Choose the operating threshold and the count-to-grade bands of a model on the `valid` split.

The model's counts are biased (it misses some lesions and finds some that annotators did not mark),
so Hayashi's bands on true counts do not fit its counts. For each candidate threshold we find the
three bands that maximise grade accuracy exactly (an O(max count) scan, see `best_bands`), then keep
the threshold with the best accuracy, ties broken by the lower counting error. Where a band can move
over counts no photo has without changing the accuracy, it is put in the middle of that gap, so the
boundary is as far as possible from the photos it separates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from detector.model_card import ModelCard

DEFAULT_THRESHOLDS: np.ndarray = np.round(np.arange(0.05, 0.81, 0.01), 2)
N_GRADES = 4


@dataclass(frozen=True)
class Calibration:
    operating_conf: float
    grade_bands: tuple[int, int, int]
    grade_accuracy: float
    count_mae: float
    n_images: int

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["grade_bands"] = list(self.grade_bands)
        return data


def _cumulative(counts: np.ndarray, grades: np.ndarray, size: int) -> np.ndarray:
    """H[g, k] = number of photos of grade g with count <= k, for k in 0..size-1."""
    hist = np.zeros((N_GRADES, size), dtype=np.int64)
    np.add.at(hist, (grades, np.minimum(counts, size - 1)), 1)
    return hist.cumsum(axis=1)


def _centre_of_plateau(values: np.ndarray, lo: int, chosen: int) -> int:
    """Middle of the run of maxima around `chosen` in values[lo:], as an absolute index."""
    best = values[chosen - lo]
    left = chosen
    while left - 1 >= lo and values[left - 1 - lo] == best:
        left -= 1
    right = chosen
    while right + 1 < lo + len(values) and values[right + 1 - lo] == best:
        right += 1
    return (left + right) // 2


def best_bands(counts: Sequence[int], grades: Sequence[int]) -> tuple[tuple[int, int, int], float]:
    """Bands (inclusive upper counts of grades 0, 1, 2) with the highest grade accuracy.

    accuracy(b0, b1, b2) = H0[b0] + H1[b1] - H1[b0] + H2[b2] - H2[b1] + N3 - H3[b2]; for a fixed b1
    the b0 and b2 terms are independent, so prefix/suffix maxima give the optimum in one scan.
    """
    c = np.asarray(counts, dtype=np.int64)
    g = np.asarray(grades, dtype=np.int64)
    if len(c) == 0:
        raise ValueError("no photos to calibrate on")
    if c.min() < 0 or g.min() < 0 or g.max() >= N_GRADES:
        raise ValueError("counts must be >= 0 and grades in 0..3")
    size = int(c.max()) + 2  # one past the largest count: a band there puts every photo below it
    h = _cumulative(c, g, size)
    n3 = int((g == 3).sum())
    f = h[0] - h[1]  # gain of b0
    s = h[2] - h[3]  # gain of b2
    prefix_arg = np.array([int(np.argmax(f[: k + 1])) for k in range(size)])
    suffix_arg = np.array([k + int(np.argmax(s[k:])) for k in range(size)])
    total = f[prefix_arg] + h[1] - h[2] + s[suffix_arg] + n3
    b1 = int(np.argmax(total))
    b0, b2 = int(prefix_arg[b1]), int(suffix_arg[b1])
    b0 = _centre_of_plateau(f[: b1 + 1], 0, b0)
    b2 = _centre_of_plateau(s[b1:], b1, b2)
    b1 = _centre_of_plateau((h[1] - h[2])[b0 : b2 + 1], b0, b1)
    accuracy = (h[0][b0] + h[1][b1] - h[1][b0] + h[2][b2] - h[2][b1] + n3 - h[3][b2]) / len(c)
    return (b0, b1, b2), float(accuracy)


def grades_from_counts(counts: Sequence[int], bands: Sequence[int]) -> np.ndarray:
    """Vectorised `detector.grading.grade_from_count`."""
    c = np.asarray(counts, dtype=np.int64)
    return (c[:, None] > np.asarray(bands, dtype=np.int64)[None, :]).sum(axis=1)


def counts_at(scores: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    return np.array([int(np.count_nonzero(np.asarray(s) >= threshold)) for s in scores], dtype=np.int64)


def calibrate(
    scores: Sequence[np.ndarray],
    labelled_counts: Sequence[int],
    grades: Sequence[int],
    thresholds: Sequence[float] = tuple(DEFAULT_THRESHOLDS),
) -> Calibration:
    """Best (threshold, bands) on these photos: max grade accuracy, then min count MAE."""
    return calibrate_counts({float(t): counts_at(scores, float(t)) for t in thresholds}, labelled_counts, grades)


def calibrate_counts(
    counts_by_threshold: dict[float, np.ndarray], labelled_counts: Sequence[int], grades: Sequence[int]
) -> Calibration:
    """As `calibrate`, from the counts each candidate threshold gives (when they are not a plain
    cut of fixed scores, e.g. flip fusion whose scores depend on the threshold it runs at)."""
    truth = np.asarray(labelled_counts, dtype=np.float64)
    best: Calibration | None = None
    for t, raw in sorted(counts_by_threshold.items()):
        counts = np.asarray(raw, dtype=np.int64)
        bands, accuracy = best_bands(counts, grades)
        mae = float(np.abs(counts - truth).mean())
        candidate = Calibration(round(float(t), 4), bands, accuracy, mae, len(counts))
        if best is None or (accuracy, -mae) > (best.grade_accuracy, -best.count_mae):
            best = candidate
    if best is None:
        raise ValueError("no thresholds to calibrate over")
    return best


def cross_validated_accuracy(
    scores: Sequence[np.ndarray],
    labelled_counts: Sequence[int],
    grades: Sequence[int],
    folds: int = 5,
    seed: int = 0,
) -> float:
    """Grade accuracy when threshold and bands are fitted on other folds: an honest estimate."""
    n = len(scores)
    order = np.random.default_rng(seed).permutation(n)
    g = np.asarray(grades, dtype=np.int64)
    correct = 0
    for k in range(folds):
        held = order[k::folds]
        fit = np.setdiff1d(order, held)
        cal = calibrate([scores[i] for i in fit], np.asarray(labelled_counts)[fit], g[fit])
        predicted = grades_from_counts(counts_at([scores[i] for i in held], cal.operating_conf), cal.grade_bands)
        correct += int((predicted == g[held]).sum())
    return correct / n


def apply_to_card(model_dir: Path, calibration: Calibration, metrics: dict[str, float] | None = None) -> ModelCard:
    """Store the calibrated threshold and bands (and optionally metrics) in the model's card."""
    card = ModelCard.load(Path(model_dir))
    updated = replace(
        card,
        operating_conf=calibration.operating_conf,
        grade_bands=calibration.grade_bands,
        metrics={**card.metrics, **(metrics or {})},
    )
    updated.save(Path(model_dir))
    return updated


def save_calibration(calibration: Calibration, path: Path, extra: dict[str, object] | None = None) -> None:
    path.write_text(json.dumps({**calibration.to_dict(), **(extra or {})}, indent=2) + "\n", encoding="utf-8")
