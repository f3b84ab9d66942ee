"""The gate's content CNN (quality_gate/content_cnn.py): its input, the shipped network's view of code-made images,
the gate's use of its logit, and the training script's parts (bench/content_cnn.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import content_cnn as train
from bench import gate_data as gd
from quality_gate import content_cnn
from quality_gate.measures import working_copies
from quality_gate.policy import Thresholds, assess, judge
from tests.conftest import skin_photo


def served(image: np.ndarray) -> float:
    """The logit as the gate computes it: on the half-size working copy."""
    return content_cnn.content_logit(working_copies(image, Thresholds().analysis_side)[1])


def test_model_input_is_a_scaled_square_whatever_the_aspect() -> None:
    grey = np.full((240, 320, 3), 160, np.uint8)
    x = content_cnn.model_input(grey)
    assert x.shape == (1, 3, content_cnn.INPUT_SIDE, content_cnn.INPUT_SIDE) and x.dtype == np.float32
    assert np.allclose(x, (160 / 255 - content_cnn.MEAN) / content_cnn.SCALE, atol=1e-6)
    assert content_cnn.model_input(np.zeros((50, 900, 3), np.uint8)).shape == x.shape


def test_the_shipped_network_tells_code_made_skin_from_generated_non_skin() -> None:
    """Code-made skin (even tone, pores, red spots) reads far more like skin than any generated non-skin image,
    including the two families no not_skin_photo model was trained on (fur, scans)."""
    skin = max(served(skin_photo(640, 480, seed=s)) for s in range(3))
    others = {family: min(served(gd.non_skin(family, 1000 + s)) for s in range(3)) for family in gd.NON_SKIN}
    assert all(value > skin + 2.0 for value in others.values()), (skin, others)


def test_a_fault_on_skin_does_not_make_it_other_than_skin() -> None:
    """Darker, blurred or shadowed skin is still skin: the other codes speak for those (trained as skin)."""
    photo = skin_photo(640, 480, seed=0)
    worst_non_skin = min(served(gd.non_skin(family, 1000)) for family in gd.NON_SKIN)
    for fault in (gd.exposure(-2.0), gd.gaussian_blur(3.0), gd.cast_shadow(4.0, 90.0)):
        assert served(fault(photo)) < worst_non_skin - 2.0


def test_the_gate_refuses_above_the_threshold_and_exposure_hides_it() -> None:
    photo = skin_photo(640, 480, seed=0)
    report = assess(photo)
    logit = report.measures["content_logit"]
    assert math.isfinite(logit)
    strict = Thresholds(max_content_logit=logit - 1.0)
    refused = judge(report.measures, strict)
    assert refused.retake_codes == ["not_skin_photo"]  # reported alone: advice on light or focus is no use
    assert judge(report.measures, Thresholds(max_content_logit=logit - 1.0, learned_offset=2.0)).accepted
    assert judge(report.measures, Thresholds(max_content_logit=logit - 1.0, learned_verdict=False)).accepted
    dark = assess(gd.exposure(-6.0)(photo), strict)
    assert "too_dark" in dark.retake_codes and "not_skin_photo" not in dark.retake_codes


def test_measures_cached_before_the_network_are_judged_without_it() -> None:
    values = dict(assess(skin_photo(640, 480, seed=1)).measures)
    del values["content_logit"]
    assert judge(values, Thresholds(max_content_logit=-100.0)).retake_codes == judge(values, Thresholds()).retake_codes


# --- the training script --------------------------------------------------------------------------------------------


def test_development_sources_fall_into_every_fold_and_report_photos_never_train() -> None:
    sources = train.development_sources()
    assert sources and all(s.role == "development" for s in sources)
    folds = train.real_folds([s.name for s in sources])
    assert sorted(set(folds.values())) == list(range(train.FOLDS))
    assert folds == train.real_folds(list(reversed([s.name for s in sources])))  # order does not matter
    assert not set(train.FIT_FAMILIES) & set(gd.HELD_OUT_FAMILIES)


def test_crops_and_scales_stay_within_their_bounds() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((400, 600, 3), np.uint8)
    for _ in range(50):
        crop = train.random_crop(image, rng, 0.35)
        assert crop.shape[0] <= 400 and crop.shape[1] <= 600
        assert max(crop.shape[:2]) >= 0.35 * 400 * 0.77 - 1  # the short side's share, whatever the aspect
    assert max(train.at_half(image).shape[:2]) == train.HALF
    assert max(train.at_half(np.zeros((100, 60, 3), np.uint8)).shape[:2]) == train.HALF
    assert train.at_most(image, 1280) is image


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_training_copies_alternate_skin_and_not_skin_with_their_folds(index: int) -> None:
    skin = [skin_photo(640, 480, seed=s) for s in range(3)]
    real = [np.full((300, 500, 3), (30, 90, 200), np.uint8)]
    bank = [train.at_half(gd.non_skin("texture", 1)), train.at_half(gd.non_skin("text", 1))]
    data = train.Copies(skin, [0, 1, 2], real, [4], bank, train.Config(epochs=1, per_photo=1), seed=0)
    assert len(data) == 6
    x, label, fold = data[index]
    assert x.shape == (3, content_cnn.INPUT_SIDE, content_cnn.INPUT_SIDE) and x.dtype == np.float32
    assert label == index % 2
    assert fold in ({0, 1, 2} if index % 2 == 0 else {-1, 0, 1, 2, 4})
    again = data[index]
    assert np.array_equal(x, again[0])  # every copy from its own seed: the same item is the same copy


def test_an_exported_graph_comes_back_as_a_trainable_network_with_the_same_outputs(tmp_path) -> None:
    import torch

    from bench.lighting_cnn import make_model

    torch.manual_seed(0)
    model = make_model(4).eval()
    for m in model:  # batch norm away from identity, so folding it into the convolutions is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    weights = tmp_path / "w.pt"
    torch.save({"config": "tiny", "width": 4, "state": model.state_dict()}, weights)
    graph = tmp_path / "tiny.onnx"
    train.main(["export", "--weights", str(weights), "--onnx", str(graph)])
    back = train.from_onnx(graph)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in back)
    x = torch.randn(3, 3, content_cnn.INPUT_SIDE, content_cnn.INPUT_SIDE)
    with torch.no_grad():
        assert torch.allclose(back(x), model(x), atol=1e-4)
    # and a fine-tuned network (no batch norm) exports to a graph of the same shape
    torch.save({"config": "ft", "width": 4, "batch_norm": False, "state": back.state_dict()}, weights)
    train.main(["export", "--weights", str(weights), "--onnx", str(tmp_path / "again.onnx")])
    with torch.no_grad():
        assert torch.allclose(train.from_onnx(tmp_path / "again.onnx")(x), model(x), atol=1e-4)


def test_the_smallest_crops_are_settings_of_the_stream() -> None:
    skin = [skin_photo(640, 480, seed=1)]
    bank = [train.at_half(gd.non_skin("texture", 1))]
    close = train.Copies(skin, [0], [], [], bank, train.Config(epochs=1, per_photo=64, least_skin=0.12), seed=0)
    wide = train.Copies(skin, [0], [], [], bank, train.Config(epochs=1, per_photo=64), seed=0)
    assert train.Config().least_skin == 0.35
    # the same seeds draw the same relative crop size; a lower floor reaches smaller crops, which at_half enlarges more
    # and so shows less fine detail per input pixel: the inputs differ
    assert any(not np.array_equal(close[i][0], wide[i][0]) for i in range(0, 128, 2))
    # and the generated non-skin's crops likewise (odd items: no real photos here, so every one is a bank crop)
    assert all(np.array_equal(close[i][0], wide[i][0]) for i in range(1, 128, 2))
    closer = train.Copies(skin, [0], [], [], bank, train.Config(epochs=1, per_photo=64, least_bank=0.15), seed=0)
    assert train.Config().least_bank == 0.5
    assert any(not np.array_equal(closer[i][0], wide[i][0]) for i in range(1, 128, 2))


def test_close_ups_are_centred_on_the_lesions_and_stay_inside_the_frame() -> None:
    image = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    crop = train.close_up(image, (0.6, 0.6, 0.8, 0.8), 0.25)  # lesions low right: the crop centred on (0.7, 0.7)
    assert crop.shape == (120, 160, 3)
    assert np.array_equal(crop, image[336 - 60 : 336 + 60, 448 - 80 : 448 + 80])
    corner = train.close_up(image, (0.9, 0.9, 1.0, 1.0), 0.5)  # would stick out: moved inside
    assert np.array_equal(corner, image[240:, 320:])
    assert np.array_equal(train.close_up(image, None, 1.0), image)


def test_a_graphs_logits_on_served_inputs_are_what_the_gate_reads() -> None:
    photos = [skin_photo(640, 480, seed=s) for s in (3, 4)]
    inputs = np.stack([train.served_input(photo) for photo in photos])
    assert train.graph_logits(content_cnn.MODEL_PATH, inputs) == pytest.approx([served(p) for p in photos], abs=1e-6)
