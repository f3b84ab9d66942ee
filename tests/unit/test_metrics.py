"""Hand-computed cases for our COCO-style AP, matching, grade bands and calibration."""

from __future__ import annotations

import contextlib
import io
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from detector.calibration import best_bands, calibrate, cross_validated_accuracy, grades_from_counts
from detector.grading import grade_from_count
from detector.metrics import (
    DetectionAccumulator,
    average_precision,
    box_iou,
    count_mae,
    grade_confusion,
    match_detections,
)
from detector.model_card import ModelCard


def test_box_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0])


def test_ap_tp_fp_tp_is_hand_computed() -> None:
    # Two ground truths; ranked TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1 for recall <= 0.5 (51 of the 101 points), 2/3 above (50 points).
    ap = average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), n_gt=2)
    assert ap[0] == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_ap_perfect_missing_and_empty() -> None:
    assert average_precision(np.array([True, True]), np.array([0.9, 0.5]), n_gt=2)[0] == pytest.approx(1.0)
    # Half the objects never found: precision 1 up to recall 0.5, nothing beyond.
    assert average_precision(np.array([True]), np.array([0.9]), n_gt=2)[0] == pytest.approx(51 / 101)
    assert average_precision(np.zeros((0, 1), bool), np.zeros(0), n_gt=3)[0] == 0.0
    assert np.isnan(average_precision(np.array([False]), np.array([0.3]), n_gt=0)[0])


def test_ap_ignores_input_order() -> None:
    tp = np.array([True, False, True, False])
    scores = np.array([0.2, 0.9, 0.8, 0.1])
    perm = np.array([3, 1, 0, 2])
    assert average_precision(tp, scores, 4)[0] == pytest.approx(average_precision(tp[perm], scores[perm], 4)[0])
    # Ranked: FP(.9), TP(.8), TP(.2), FP(.1): precision .5 at r=.25, 2/3 at r=.5 -> envelope 2/3 up to .5.
    assert average_precision(tp, scores, 4)[0] == pytest.approx(51 * (2 / 3) / 101)


def test_matching_is_greedy_by_score_and_one_to_one() -> None:
    gt = np.array([[0, 0, 10, 10]])
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    tp, hit = match_detections(preds, np.array([0.3, 0.9]), gt, np.array([0.5]))
    assert tp[:, 0].tolist() == [False, True]  # the higher score takes the only ground truth
    assert hit[:, 0].tolist() == [True]


def test_matching_thresholds_differ() -> None:
    gt = np.array([[0, 0, 10, 10]])
    pred = np.array([[0, 0, 10, 7]])  # IoU 0.7
    tp, _ = match_detections(pred, np.array([0.9]), gt, np.array([0.5, 0.7, 0.75]))
    assert tp[0].tolist() == [True, True, False]


def test_accumulator_pools_images_and_small_recall() -> None:
    acc = DetectionAccumulator(class_names=["lesion"], recall_conf=0.5)
    # Image 1: one small box found at 0.9; image 2: one large box found only at 0.3 (below recall_conf).
    acc.add([[0, 0, 20, 20]], [0.9], [0], [[0, 0, 20, 20]], [0])
    acc.add([[0, 0, 100, 100], [200, 200, 210, 210]], [0.3, 0.6], [0, 0], [[0, 0, 100, 100]], [0])
    summary = acc.summary()
    # Pooled ranking: TP .9, FP .6, TP .3 over two ground truths = the hand case above.
    assert summary["mAP50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert summary["small_gt"] == 1 and summary["small_recall"] == 1.0
    assert "per_class" not in summary


def test_accumulator_per_class_when_several_classes() -> None:
    acc = DetectionAccumulator(class_names=["a", "b"])
    acc.add([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 0], [[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])
    per_class = acc.summary()["per_class"]
    assert per_class["a"]["mAP50"] == pytest.approx(1.0)
    assert per_class["b"]["mAP50"] == 0.0


SERVING_MAX_DET = next(f.default for f in fields(ModelCard) if f.name == "max_det")


def _random_split(seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(gt boxes, predicted boxes, scores) per image: jittered hits, strays, images without ground truth or
    without predictions, and one image with more predictions than COCO's default 100 (its hits scored lowest).
    Integer coordinates keep IoUs exact in both implementations, so a threshold never splits on rounding."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(14):
        n_gt = 0 if i in (2, 9) else int(rng.integers(1, 16))
        xy = rng.integers(0, 560, size=(n_gt, 2))
        gt = np.hstack([xy, xy + rng.integers(6, 80, size=(n_gt, 2))]).astype(np.float64)
        hits = gt[rng.random(n_gt) < 0.75] if n_gt else gt
        jittered = hits + rng.integers(-6, 7, size=hits.shape)
        n_stray = 140 if i == 5 else int(rng.integers(0, 8))
        xy = rng.integers(0, 560, size=(n_stray, 2))
        stray = np.hstack([xy, xy + rng.integers(6, 80, size=(n_stray, 2))])
        preds = np.vstack([jittered, stray]).astype(np.float64).reshape(-1, 4)
        preds[:, 2:] = np.maximum(preds[:, 2:], preds[:, :2] + 1)
        low, high = (0.0, 0.05) if i == 5 else (0.3, 1.0)  # image 5: its hits rank below its 140 strays
        scores = np.concatenate([rng.uniform(low, high, len(jittered)), rng.uniform(0.05, 0.7, n_stray)])
        if i in (4, 11):
            preds, scores = preds[:0], scores[:0]  # the detector found nothing here
        images.append((gt, preds, scores))
    return images


def test_map_agrees_with_pycocotools() -> None:
    """Our mAP50 / mAP50-95 equal COCOeval's on the same detections, class-agnostic, all areas.

    Like with like: COCO keeps only `maxDets[-1]` (default 100) detections per image while the serving path keeps
    `max_det` (300), so maxDets is raised to ours; one image here has 140 predictions, where the default would
    differ. Both use greedy matching by score, IoU >= threshold, 101 recall points and the same precision envelope.
    """
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    images = _random_split(seed=15)
    assert max(len(p) for _, p, _ in images) <= SERVING_MAX_DET

    accumulator = DetectionAccumulator(class_names=["lesion"])
    gt_json: dict[str, list[dict[str, object]]] = {"images": [], "annotations": [], "categories": [{"id": 1}]}
    detections: list[dict[str, object]] = []
    for image_id, (gt, preds, scores) in enumerate(images, 1):
        accumulator.add(preds, scores, np.zeros(len(preds)), gt, np.zeros(len(gt)))
        gt_json["images"].append({"id": image_id})
        for x1, y1, x2, y2 in gt.tolist():
            w, h = x2 - x1, y2 - y1
            gt_json["annotations"].append(
                {"id": len(gt_json["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                 "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for (x1, y1, x2, y2), score in zip(preds.tolist(), scores.tolist(), strict=True):
            detections.append(
                {"image_id": image_id, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
            )

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = coco_mod.COCO()
        coco_gt.dataset = gt_json
        coco_gt.createIndex()
        evaluator = cocoeval_mod.COCOeval(coco_gt, coco_gt.loadRes(detections), iouType="bbox")
        evaluator.params.maxDets = [1, 10, SERVING_MAX_DET]
        evaluator.evaluate()
        evaluator.accumulate()
    # precision[T, R, K, A, M]: every IoU threshold and recall point, the one class, area "all", maxDets[-1]
    precision = evaluator.eval["precision"][:, :, 0, 0, -1]
    assert (precision > -1).all()
    coco_ap = precision.mean(axis=1)
    ours = accumulator.summary()
    assert ours["mAP50"] == pytest.approx(coco_ap[0], abs=1e-9)
    assert ours["mAP50_95"] == pytest.approx(coco_ap.mean(), abs=1e-9)
    assert 0.2 < ours["mAP50"] < 0.95  # a split that exercises both hits and misses

    evaluator.params.maxDets = [1, 10, 100]  # COCO's default drops image 5's hits: not like with like
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    assert evaluator.eval["precision"][0, :, 0, 0, -1].mean() != pytest.approx(ours["mAP50"], abs=1e-9)


def test_confusion_and_mae() -> None:
    assert grade_confusion([0, 1, 1, 3], [0, 1, 2, 3]).tolist() == [
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 1],
    ]
    assert count_mae([3, 10], [5, 4]) == 4.0


def test_best_bands_separates_perfectly_and_centres_gaps() -> None:
    counts = [1, 2, 10, 12, 30, 31, 80]
    grades = [0, 0, 1, 1, 2, 2, 3]
    bands, accuracy = best_bands(counts, grades)
    assert accuracy == 1.0
    assert bands == (5, 20, 55)  # middles (rounded down) of the gaps 2..9, 12..29, 31..79
    assert grades_from_counts(counts, bands).tolist() == grades
    assert [grade_from_count(c, bands).grade for c in counts] == grades


def test_best_bands_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 25, 40)
    grades = np.clip(counts // 6 + rng.integers(-1, 2, 40), 0, 3)
    _, accuracy = best_bands(counts, grades)
    brute = max(
        float(np.mean(grades_from_counts(counts, (a, b, c)) == grades))
        for a in range(27)
        for b in range(a, 27)
        for c in range(b, 27)
    )
    assert accuracy == pytest.approx(brute)


def test_calibrate_picks_threshold_that_grades_best() -> None:
    # Per photo: lesions at 0.9 (real) and at 0.3 (noise). Only above 0.3 do counts follow grades.
    rng = np.random.default_rng(0)
    grades = np.repeat([0, 1, 2, 3], 10)
    real = grades * 10 + 2
    scores = [np.r_[np.full(r, 0.9), np.full(int(rng.integers(0, 40)), 0.3)] for r in real]
    cal = calibrate(scores, real, grades)
    assert cal.grade_accuracy == 1.0
    assert cal.operating_conf > 0.3
    assert cal.count_mae == 0.0
    assert cross_validated_accuracy(scores, real, grades, folds=4) >= 0.9


def test_evaluate_with_a_fake_predictor(tmp_path: Path) -> None:
    """Perfect boxes -> AP 1; count and grade come from the served call when asked."""
    import cv2

    from detector.evaluation import evaluate, grade_from_name, load_labelled_images
    from detector.findings import Detection, Finding
    from detector.grading import grade_from_count

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    truth = {"levle0_a": [(10, 10, 30, 30)], "levle2_b": [(5, 5, 15, 15), (40, 40, 80, 80)]}
    for stem, boxes in truth.items():
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), np.zeros((100, 100, 3), np.uint8))
        lines = [
            f"0 {(x1 + x2) / 200} {(y1 + y2) / 200} {(x2 - x1) / 100} {(y2 - y1) / 100}" for x1, y1, x2, y2 in boxes
        ]
        (tmp_path / "labels" / f"{stem}.txt").write_text("\n".join(lines))

    class Fake:
        def __init__(self) -> None:
            self.calls: list[float | None] = []

        def predict(self, image: np.ndarray, conf: float | None = None) -> Detection:
            self.calls.append(conf)
            stem = "levle2_b" if len(self.calls) > 2 else "levle0_a"
            boxes = truth[stem]
            count = len(boxes) if conf is None else 7  # the low-threshold call must not be used for counts
            return Detection(
                findings=[Finding("lesion", 0.9, tuple(map(float, b))) for b in boxes],
                lesion_count=count,
                severity=grade_from_count(count, (0, 1, 50)),
                uncertainty=0.0,
                model_version="fake",
                operating_conf=0.5,
            )

    images, _ = load_labelled_images(tmp_path, "valid")
    assert [i.grade for i in images] == [0, 2] and grade_from_name("x.jpg") is None
    fake = Fake()
    result = evaluate(fake, images, class_names=["lesion"], operating_conf=0.5, served_counts=True)
    assert fake.calls == [0.001, None, 0.001, None]
    s = result.summary
    assert s["mAP50"] == pytest.approx(1.0) and s["mAP50_95"] == pytest.approx(1.0)
    assert s["count_mae"] == 0.0 and s["small_recall"] == 1.0 and s["small_gt"] == 2
    # Counts 1 and 2 with bands (0, 1, 50): grades 1 and 2 against truth 0 and 2.
    assert s["grade_accuracy"] == 0.5 and s["grade_confusion"][0][1] == 1 and s["grade_confusion"][2][2] == 1
