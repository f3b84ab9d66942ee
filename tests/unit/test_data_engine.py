"""The data engine's pure parts: the objectness map, suspect scoring, perceptual hashes, the missed-lesion rule."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from detector.heatmap import heatmap_png, objectness_map, score_mass
from detector.model_card import ModelCard
from detector.onnx_runtime import Detector
from pipelines.review.missed_lesions import MissedLesionPolicy, should_route
from pipelines.review.suspects import LabelledCase, hamming, label_suspicion, perceptual_hash, rank_suspects
from tests.conftest import skin_photo

# (cx, cy, score) per anchor, in network pixels of a 640 x 640 input
ANCHORS = [(100.0, 120.0, 0.9), (300.0, 300.0, 0.15), (500.0, 80.0, 0.1), (20.0, 600.0, 0.01)]


class AnchorSession:
    """A YOLOv8 head output with a few anchors at known places and scores, the rest silent."""

    def run(self, _names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feed.values()))
        out = np.zeros((batch.shape[0], 5, 50), np.float32)
        for k, (cx, cy, score) in enumerate(ANCHORS):
            out[:, 0:4, k] = (cx, cy, 10.0, 10.0)
            out[:, 4, k] = score
        out[:, 0:2, len(ANCHORS) :] = 5000.0  # off the photo: ignored
        return [out]


def detector() -> Detector:
    card = ModelCard(version="fake-1", weights="none.pt", class_names=["lesion"], operating_conf=0.25, tta_flip=False)
    return Detector(card, AnchorSession())  # type: ignore[arg-type]


def test_objectness_map_puts_each_anchor_score_where_it_looks() -> None:
    grid = objectness_map(detector(), np.zeros((640, 640, 3), np.uint8), cell=8)
    assert grid.shape == (80, 80)
    assert grid[120 // 8, 100 // 8] == pytest.approx(0.9)
    assert grid[300 // 8, 300 // 8] == pytest.approx(0.15)
    assert grid[80 // 8, 500 // 8] == pytest.approx(0.1)
    assert np.count_nonzero(grid) == 4
    # sub-threshold evidence: the 0.15 and 0.1 peaks (0.9 is a found lesion, 0.01 is noise below the floor)
    assert score_mass(grid, below=0.25) == pytest.approx(0.25)


def test_heatmap_png_is_a_transparent_overlay_of_the_photo_size() -> None:
    grid = objectness_map(detector(), np.zeros((640, 640, 3), np.uint8))
    image = Image.open(io.BytesIO(heatmap_png(grid, 640, 480)))
    assert image.mode == "RGBA" and image.size == (640, 480)
    alpha = np.asarray(image)[:, :, 3]
    assert alpha[0, 639] == 0 and alpha.max() > 150  # silent corner transparent, the found lesion bright


def _case(grade: int, boxes: list, findings: list, case_id: str = "c1", phash: int | None = None) -> LabelledCase:
    return LabelledCase(
        case_id=case_id,
        reviewer="r1",
        grade=grade,
        boxes=tuple(boxes),
        findings=tuple(findings),
        phash=phash,
    )


def to_model(name: str) -> str | None:
    return None if name == "scar" else "lesion"


def test_a_dropped_confident_finding_an_unseen_box_and_a_far_grade_are_suspect() -> None:
    findings = [("lesion", 0.9, (0.0, 0.0, 10.0, 10.0)), ("lesion", 0.3, (50.0, 50.0, 60.0, 60.0))]
    clean = _case(0, [("papule", (1.0, 0.0, 11.0, 10.0)), ("scar", (80.0, 80.0, 99.0, 99.0))], findings)
    assert label_suspicion(clean, to_model=to_model, min_confidence=0.5).score == 0.0
    sloppy = _case(3, [("pustule", (200.0, 200.0, 210.0, 210.0))], findings)  # grade 3 for one box
    suspect = label_suspicion(sloppy, to_model=to_model, min_confidence=0.5)
    assert (suspect.missed, suspect.extra, suspect.grade_from_boxes) == (1, 1, 0)
    assert suspect.reasons == ["missed_boxes", "extra_boxes", "grade_far_from_boxes"]
    assert suspect.score == pytest.approx(0.9 + 0.25 + 1.5 * 2)


def test_perceptual_hash_finds_near_duplicates_and_ranks_disagreeing_ones_first() -> None:
    photo = skin_photo(320, 240, seed=1)
    brighter = np.clip(photo.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    other = skin_photo(320, 240, seed=2, spots=60)[::-1].copy()
    h1, h2, h3 = perceptual_hash(photo), perceptual_hash(brighter), perceptual_hash(other)
    assert hamming(h1, h2) <= 6 < hamming(h1, h3)
    cases = [_case(0, [], [], "a", h1), _case(1, [], [], "b", h2), _case(0, [], [], "c", h3)]
    ranked = rank_suspects(cases, to_model=to_model, min_confidence=0.5)
    assert [(s.case_id, s.reasons, s.duplicates) for s in ranked] == [
        ("a", ["near_duplicate_disagrees"], ["b"]),
        ("b", ["near_duplicate_disagrees"], ["a"]),
    ]


def test_missed_lesion_rule_needs_few_lesions_and_evidence() -> None:
    policy = MissedLesionPolicy(max_count=2, min_mass=3.0, min_uncertainty=0.2, sample_rate=0.5)
    assert should_route(lesion_count=0, uncertainty=0.0, mass=4.2, policy=policy)
    assert should_route(lesion_count=1, uncertainty=0.3, mass=0.0, policy=policy)
    assert not should_route(lesion_count=0, uncertainty=0.0, mass=0.5, policy=policy)  # a clean face
    assert not should_route(lesion_count=9, uncertainty=0.9, mass=9.0, policy=policy)  # not "few"
