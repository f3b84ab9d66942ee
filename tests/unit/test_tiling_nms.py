"""Tiling geometry, letterboxing and NMS/fusion of the serving detector."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.metrics import box_iou
from detector.nms import fuse_passes, nms
from detector.tiling import in_core, letterbox, make_tiles, stride_shape, tile_starts, unletterbox


@pytest.mark.parametrize(("height", "width"), [(640, 640), (480, 640), (3000, 4000), (641, 1500), (100, 5000)])
def test_tiles_cover_the_photo_and_every_pixel_has_exactly_one_owner(height: int, width: int) -> None:
    tiles = make_tiles(height, width, 640, 0.2)
    covered = np.zeros((height, width), np.int32)
    owned = np.zeros((height, width), np.int32)
    for t in tiles:
        assert 0 <= t.x0 < t.x1 <= width and 0 <= t.y0 < t.y1 <= height
        assert t.width == min(640, width) and t.height == min(640, height)  # one shape: they batch together
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        owned[int(np.ceil(t.cy0)) : int(np.ceil(t.cy1)), int(np.ceil(t.cx0)) : int(np.ceil(t.cx1))] += 1
        assert t.x0 <= t.cx0 < t.cx1 <= t.x1 and t.y0 <= t.cy0 < t.cy1 <= t.y1
    assert covered.min() >= 1
    assert (owned == 1).all()


def test_neighbouring_tiles_overlap_enough_for_a_lesion() -> None:
    starts = tile_starts(4000, 640, 0.2)
    assert starts[0] == 0 and starts[-1] == 4000 - 640
    assert min(b - a for a, b in itertools.pairwise(starts)) <= 640 - 128  # >= 20% overlap
    assert tile_starts(500, 640, 0.2) == [0]
    with pytest.raises(ValueError):
        tile_starts(100, 640, 1.0)


def test_a_box_near_a_tile_seam_belongs_to_one_tile_only() -> None:
    tiles = make_tiles(640, 1200, 640, 0.2)
    box = np.array([[590.0, 100.0, 615.0, 125.0]])  # inside both tiles' windows
    owners = [t for t in tiles if t.x0 <= 590 and t.x1 >= 615 and in_core(box, t)[0]]
    assert len(owners) == 1


def test_letterbox_round_trip_maps_boxes_back_to_the_image() -> None:
    image = np.zeros((300, 500, 3), np.uint8)
    fitted, fit = letterbox(image, stride_shape(300, 500, 32))
    assert fitted.shape[:2] == (320, 512)
    original = np.array([[10.0, 20.0, 110.0, 220.0]], np.float32)
    network = original * fit.scale + np.array([fit.pad_x, fit.pad_y, fit.pad_x, fit.pad_y], np.float32)
    np.testing.assert_allclose(unletterbox(network, fit), original, atol=1e-4)


boxes_strategy = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(2, 80), st.floats(2, 80)), min_size=n, max_size=n
        ),
        st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(boxes_strategy, st.floats(0.1, 0.9))
def test_nms_keeps_a_subset_without_overlaps_above_the_threshold(data: tuple[list, list], threshold: float) -> None:
    raw, scores = data
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], np.float32)
    scores32 = np.array(scores, np.float32)
    keep = nms(boxes, scores32, threshold)
    assert len(set(keep.tolist())) == len(keep) and all(0 <= k < len(boxes) for k in keep)
    kept = boxes[keep]
    iou = box_iou(kept, kept)
    np.fill_diagonal(iou, 0)
    assert (iou <= threshold + 1e-6).all()
    assert keep.size == 0 or scores32[keep[0]] == scores32.max()  # best first


def test_nms_respects_max_det_and_cutting_scores_commutes_with_it() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 600, (300, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 40, (300, 2))]).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    assert len(nms(boxes, scores, 0.5, max_det=7)) == 7
    full = nms(boxes, scores, 0.5, max_det=1000)
    high = scores >= 0.4
    cut = np.flatnonzero(high)[nms(boxes[high], scores[high], 0.5, max_det=1000)]
    assert set(full[scores[full] >= 0.4].tolist()) == set(cut.tolist())  # what the detector's fixed floor relies on


def test_fusion_downweights_a_lesion_seen_by_one_pass_only() -> None:
    a = (np.array([[10, 10, 30, 30], [100, 100, 120, 120]], np.float32), np.array([0.8, 0.6], np.float32))
    b = (np.array([[11, 10, 31, 30]], np.float32), np.array([0.6], np.float32))
    boxes, scores, leads = fuse_passes([a, b], 0.5)
    assert len(boxes) == 2
    assert scores[0] == pytest.approx(0.7) and scores[1] == pytest.approx(0.3)
    np.testing.assert_allclose(boxes[0], [10 + 0.6 / 1.4, 10, 30 + 0.6 / 1.4, 30], atol=1e-4)
    assert leads.tolist() == [0, 1]
