"""Agreement statistics on small cases computed by hand."""

from __future__ import annotations

import pytest

from pipelines.agreement import (
    Review,
    agreement_report,
    box_f1,
    cohen_kappa,
    consensus_boxes,
    consensus_grade,
    disagree,
    iou,
    match_boxes,
)

A = ("lesion", (0.0, 0.0, 10.0, 10.0))
A_SHIFTED = ("lesion", (1.0, 0.0, 11.0, 10.0))  # IoU with A = 90 / 110
B = ("lesion", (50.0, 50.0, 60.0, 60.0))


def test_iou_by_hand() -> None:
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (0, 0, 10, 20)) == pytest.approx(0.5)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


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
