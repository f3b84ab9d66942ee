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


def _cached(rows: list[tuple], logits: list[float]) -> list[dict]:
    return [
        {"set": s, "part": part, "photo": photo, "kind": kind, "label": label, "measures": {"content_logit": v, "x": 1}}
        for (s, part, photo, kind, label, _), v in zip(rows, logits, strict=True)
    ]


def test_relogit_runs_another_graph_on_the_rows_images_and_keeps_every_other_measure(tmp_path, monkeypatch) -> None:
    """A cache made with the shipped graph comes back unchanged under --check; a cache of other rows, or logits of
    another network, stops the run instead of writing a mixed cache."""
    import argparse
    import json

    import bench.gate_measure as gm

    images = [("real", "report", f"p{s}", "real whole", "not_skin_photo", skin_photo(640, 480, seed=s)) for s in (5, 6)]
    monkeypatch.setattr(gm, "set_images", lambda set_: iter(images))
    truth = [served(image[5]) for image in images]
    cache, out = tmp_path / "m.json", tmp_path / "out.json"

    def run(rows: list[dict], check: bool) -> list[dict]:
        cache.write_text(json.dumps(rows))
        args = argparse.Namespace(measures=cache, graph=content_cnn.MODEL_PATH, out=out, check=check)
        train.relogit(args)
        return json.loads(out.read_text())

    shifted = run(_cached(images, [t + 3.0 for t in truth]), check=False)
    assert [r["measures"]["content_logit"] for r in shifted] == pytest.approx(truth, abs=1e-6)
    assert all(r["measures"]["x"] == 1 for r in shifted)
    assert run(_cached(images, truth), check=True) == shifted
    out.unlink()
    with pytest.raises(SystemExit, match="disagree"):
        run(_cached(images, [t + 3.0 for t in truth]), check=True)
    older = _cached(images, truth)
    del older[1]["measures"]["content_logit"]  # measured before the network: nothing to check against
    with pytest.raises(SystemExit, match="disagree"):
        run(older, check=True)
    other = [(*images[0][:2], "elsewhere", *images[0][3:]), images[1]]
    with pytest.raises(SystemExit, match="does not hold"):
        run(_cached(other, truth), check=False)
    with pytest.raises(ValueError):  # a cache with more rows than the images made
        run(_cached([*images, images[0]], [*truth, 0.0]), check=False)
    assert not out.exists()


def test_families_prints_each_kinds_median_and_its_margin_over_the_threshold(tmp_path, capsys) -> None:
    import argparse
    import json

    rows = [
        {"set": "nonskin", "part": part, "photo": f"{kind}-{i}", "kind": kind, "label": "not_skin_photo",
         "measures": {"content_logit": value}}
        for part in ("selection", "report")
        for kind, values in (("fur", (0.5, 1.5, 9.0)), ("wood", (4.0, 5.0, 6.0)))
        for i, value in enumerate(values)
    ]  # fmt: skip
    cache = tmp_path / "m.json"
    cache.write_text(json.dumps(rows))
    train.families(argparse.Namespace(measures=[cache], set="nonskin", part="selection", threshold=1.0))
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "median   1.50 (margin   0.50)" in lines["fur"] and "lowest   0.50, above 2" in lines["fur"]
    assert "never trained on" in lines["fur"] and "never trained on" not in lines["wood"]
    assert "median   5.00 (margin   4.00)" in lines["wood"] and "3 rows" in lines["wood"]


def test_the_served_input_is_the_photo_inside_a_screenshots_frame() -> None:
    """The network reads what every measure reads: the photo inside a uniform frame (`policy.trimmed`), so a bench's
    logit is the gate's for a screenshot too."""
    photo = skin_photo(640, 480, seed=7)
    shot = gd.screenshot(0)(photo)
    assert assess(shot).measures["content_logit"] == pytest.approx(float(train.graph_logits(
        content_cnn.MODEL_PATH, train.served_input(shot)[None])[0]), abs=1e-6)  # fmt: skip
    inside = np.stack([train.served_input(shot), train.served_input(photo)])
    assert np.abs(inside[0] - inside[1]).mean() < 0.05  # the frame is cut: the photo's own pixels, to the inset


def test_the_grid_rows_and_their_images_come_in_one_order(tmp_path) -> None:
    """`relogit` pairs cached rows with images by position: `measure_grid` must measure exactly what `grid_images`
    makes, in its order (photos made in code, one with a lesion label and one without)."""
    import cv2

    import bench.gate_measure as gm

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    photos = []
    for seed in (8, 9):
        path = tmp_path / "images" / f"p{seed}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(skin_photo(320, 240, seed=seed), cv2.COLOR_RGB2BGR))
        photos.append(path)
    (tmp_path / "labels" / "p8.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    parts = {"p8.jpg": "selection", "p9.jpg": "report"}
    made = list(gm.grid_images("valid", photos, parts))
    rows = gm.measure_grid("valid", photos, parts, Thresholds())
    assert len(made) == len(rows) == 2 * len(gm.VALID_GRID)
    assert [(r["set"], r["part"], r["photo"], r["kind"]) for r in rows] == [image[:4] for _, image in made]
    some = [0, 5, len(rows) - 1]
    for i in some:
        assert rows[i]["measures"]["content_logit"] == pytest.approx(
            float(train.graph_logits(content_cnn.MODEL_PATH, train.served_input(made[i][1][5])[None])[0]), abs=1e-6
        )
    with pytest.raises(ValueError, match="no judged set"):
        gm.set_images("train")


def test_closeups_counts_each_part_above_the_threshold_and_plots_it(tmp_path, monkeypatch, capsys) -> None:
    import argparse

    values = {share: np.array([-3.0, -1.0, 0.5, 2.0]) * share for share in train.CLOSE_UP_SHARES}
    monkeypatch.setattr(train, "close_up_logits", lambda part, graph, limit: values)
    plot = tmp_path / "closeups.png"
    args = argparse.Namespace(
        part=["report", "holdout"], graph=content_cnn.MODEL_PATH, threshold=0.0, limit=5, plot=plot
    )
    train.close_ups(args)
    out = capsys.readouterr().out
    assert out.count("100% of each side:   2 of 4 above") == 2 and "15% of each side:   2 of 4 above" in out
    assert plot.stat().st_size > 10_000
