"""Agreement statistics on small cases computed by hand."""

from __future__ import annotations

import pytest

from detector.metrics import box_iou
from pipelines.review.agreement import (
    Review,
    agreement_report,
    box_f1,
    cohen_kappa,
    consensus_boxes,
    consensus_grade,
    disagree,
    match_boxes,
)

A = ("lesion", (0.0, 0.0, 10.0, 10.0))
A_SHIFTED = ("lesion", (1.0, 0.0, 11.0, 10.0))  # IoU with A = 90 / 110
B = ("lesion", (50.0, 50.0, 60.0, 60.0))


def test_iou_by_hand() -> None:
    ious = box_iou([(0, 0, 10, 10)], [(5, 0, 15, 10), (0, 0, 10, 20), (20, 20, 30, 30)])
    assert ious.ravel().tolist() == pytest.approx([50 / 150, 0.5, 0.0])


def test_match_is_one_to_one_label_aware_and_inclusive_at_threshold() -> None:
    half = ("lesion", (0.0, 0.0, 10.0, 20.0))  # IoU exactly 0.5 with A
    assert match_boxes([A], [half]) == [(0, 0)]
    assert match_boxes([A, A_SHIFTED], [A]) == [(0, 0)]  # the better overlap wins, the other stays unmatched
    assert match_boxes([A], [("papule", A[1])]) == []


def test_box_f1_by_hand() -> None:
    ours = [A, B, ("lesion", (100.0, 100.0, 110.0, 110.0))]
    theirs = [A_SHIFTED, B]
    assert box_f1(ours, theirs) == pytest.approx(2 * 2 / 5)
    assert box_f1([], []) == 1.0
    assert box_f1([A], []) == 0.0


def test_cohen_kappa_by_hand() -> None:
    # po = 3/4; pe = (2*2 + 1*2 + 1*0) / 16 = 0.375; kappa = 0.375 / 0.625
    assert cohen_kappa([0, 1, 2, 0], [0, 1, 1, 0]) == pytest.approx(0.6)
    assert cohen_kappa([0, 1], [1, 0]) == pytest.approx(-1.0)
    assert cohen_kappa([2, 3, 1], [2, 3, 1]) == pytest.approx(1.0)
    assert cohen_kappa([2, 2], [2, 2]) is None  # chance agreement is 1: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


def test_consensus_grade_needs_a_strict_majority() -> None:
    assert consensus_grade([1, 1, 2]) == 1
    assert consensus_grade([1, 2]) is None
    assert consensus_grade([None, 2, 2]) == 2
    assert consensus_grade([]) is None


def test_consensus_boxes_keep_majority_clusters_averaged() -> None:
    third = ("lesion", (0.0, 1.0, 10.0, 11.0))
    boxes = consensus_boxes([[A], [A_SHIFTED, B], [third]])
    assert len(boxes) == 1
    label, coords = boxes[0]
    assert label == "lesion"
    assert coords == pytest.approx((1 / 3, 1 / 3, 31 / 3, 31 / 3))
    assert consensus_boxes([[A], [B]]) == []  # one vote each out of two is no majority


def test_disagreement_is_grade_or_low_box_f1() -> None:
    base = Review("c", "r1", 1, (A, B))
    assert not disagree(base, Review("c", "r2", 1, (A_SHIFTED, B)))
    assert disagree(base, Review("c", "r2", 2, (A_SHIFTED, B)))
    # F1 = 2 * 1 / (2 + 3) = 0.4 < 0.5
    assert disagree(base, Review("c", "r2", 1, (A, ("lesion", (200.0, 0, 210, 10)), ("lesion", (300.0, 0, 310, 10)))))


def test_agreement_report_by_hand() -> None:
    reviews = [
        Review("c1", "r1", 1, (A, B)),
        Review("c1", "r2", 1, (A_SHIFTED,)),
        Review("c2", "r1", 2, ()),
        Review("c2", "r2", 3, ()),
        Review("c3", "r1", 0, (A,)),  # single review: not part of agreement
    ]
    report = agreement_report(reviews)
    (pair,) = report["pairs"]
    assert pair["reviewers"] == ["r1", "r2"]
    assert pair["cases"] == 2
    assert pair["box_f1"] == pytest.approx(2 / 3, abs=1e-4)  # 1 match, 3 boxes in all
    # grades (1, 2) vs (1, 3): po = 1/2, pe = 1/4 -> kappa = 1/3
    assert pair["grade_kappa"] == pytest.approx(1 / 3, abs=1e-4)
    r1, r2 = report["reviewers"]
    assert (r1["reviewer"], r1["cases"], r1["grade_agreement"]) == ("r1", 2, 1.0)  # c2 has no majority grade
    assert r1["box_f1_vs_consensus"] == pytest.approx(2 / 3, abs=1e-4)  # B is not in the consensus
    assert r2["box_f1_vs_consensus"] == pytest.approx(1.0)


def test_weighted_kappa_matches_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    import random

    from pipelines.review.agreement import weighted_kappa

    rng = random.Random(7)
    cases = [([0, 1, 2, 3, 2, 1], [0, 2, 2, 3, 1, 1]), ([0, 0, 3, 3], [3, 3, 0, 0]), ([1, 2], [1, 2])]
    for _ in range(50):
        n = rng.randint(2, 40)
        x = [rng.randint(0, 3) for _ in range(n)]
        cases.append((x, [min(3, max(0, g + rng.choice([-2, -1, 0, 0, 0, 1]))) for g in x]))
    import math
    import warnings

    def sk(x: list[int], y: list[int], weights: str | None) -> float | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined kappa: scikit-learn warns and says nan, we say None
            value = float(sklearn_metrics.cohen_kappa_score(x, y, labels=[0, 1, 2, 3], weights=weights))
        return None if math.isnan(value) else value

    for x, y in cases:
        for weights in ("quadratic", "linear"):
            want = sk(x, y, weights)
            got = weighted_kappa(x, y, weights=weights)
            assert got == want if want is None else got == pytest.approx(want, abs=1e-9), (x, y, weights)
        want = sk(x, y, None)
        assert cohen_kappa(x, y) == want if want is None else cohen_kappa(x, y) == pytest.approx(want, abs=1e-9)


def test_weighted_kappa_punishes_far_disagreements_more() -> None:
    from pipelines.review.agreement import weighted_kappa

    near = weighted_kappa([0, 1, 2, 3, 0, 3], [1, 1, 2, 3, 0, 3])  # one grade off by one
    far = weighted_kappa([0, 1, 2, 3, 0, 3], [3, 1, 2, 3, 0, 3])  # one grade off by three
    assert near is not None and far is not None and near > far
    assert weighted_kappa([], []) is None and weighted_kappa([2, 2], [2, 2]) is None


def test_wilson_interval_by_hand() -> None:
    from pipelines.review.agreement import wilson_interval

    low, high = wilson_interval(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0  # type: ignore[index]
    assert wilson_interval(0, 0) is None


def test_box_agreement_per_lesion_type() -> None:
    from pipelines.review.agreement import box_counts_by_type

    papule = ("papule", (0.0, 0.0, 10.0, 10.0))
    pustule = ("pustule", (50.0, 50.0, 60.0, 60.0))
    counts = box_counts_by_type([papule, pustule], [papule, ("papule", pustule[1])])
    assert counts["papule"].f1 == pytest.approx(2 * 1 / 3) and counts["pustule"].f1 == 0.0


def test_reliability_per_person_against_consensus_and_model_flags_the_sloppy_one() -> None:
    """Three reviewers on four cases: r3 grades two cases off and misses boxes; the model agrees with r1/r2."""
    good = (A, B)
    reviews = []
    model = {}
    for n in range(4):
        case = f"c{n}"
        reviews += [Review(case, "r1", 1, good), Review(case, "r2", 1, good)]
        reviews.append(Review(case, "r3", 3 if n < 2 else 1, (A,) if n < 3 else good))
        model[case] = Review(case, "model", 1, (("lesion", A[1]), ("lesion", B[1])))
    reviews.append(Review("solo", "r4", 2, (("scar", (0.0, 0.0, 5.0, 5.0)), A)))
    model["solo"] = Review("solo", "model", 2, (A,))
    report = agreement_report(
        reviews, model=model, to_model=lambda name: None if name == "scar" else "lesion", min_agreement=0.7
    )
    rows = {r["reviewer"]: r for r in report["reviewers"]}
    assert rows["r1"]["grade_agreement"] == 1.0 and not rows["r1"]["flagged"]
    assert rows["r3"]["grade_agreement"] == 0.5
    low, high = rows["r3"]["grade_agreement_ci"]
    assert low < 0.5 < high
    assert rows["r3"]["flagged"] and "grade_agreement_below_minimum" in rows["r3"]["flags"]
    assert rows["r3"]["vs_model"]["grade_agreement"] == 0.5 and rows["r3"]["vs_model"]["cases"] == 4
    # r4 reviewed alone: no consensus, but the scar is left out when comparing to the one-class model
    assert rows["r4"]["cases"] == 0 and rows["r4"]["vs_model"]["box_f1"] == 1.0 and not rows["r4"]["flagged"]
    overall = report["overall"]
    assert overall["grade_kappa_quadratic"] is not None and overall["box_f1_by_type"]["lesion"] < 1.0
    pair = next(p for p in report["pairs"] if p["reviewers"] == ["r1", "r2"])
    assert pair["grade_kappa"] is None and pair["box_f1"] == 1.0  # both always graded 1: kappa undefined
    ci = rows["r3"]["box_f1_vs_consensus_ci"]
    assert ci[0] <= rows["r3"]["box_f1_vs_consensus"] <= ci[1]
