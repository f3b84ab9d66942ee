"""Real non-skin photos (bench side) and the not_skin_photo model fitted with them (issue 12).

The photos themselves come from package wheels at bench time; these tests make their own images in code.
"""

from __future__ import annotations

import bz2
import copy
import pickle

import cv2
import numpy as np
import pytest

from bench import real_images
from bench.fit_quality_gate import fitted_on
from quality_gate import assess, verdict
from quality_gate.policy import Thresholds, judge
from tests.unit.test_quality_texture_and_light import synthetic_skin_photo


def test_views_are_the_whole_photo_and_crops_at_phone_size() -> None:
    image = np.random.default_rng(0).integers(0, 255, (300, 451, 3), dtype=np.uint8)
    views = real_images.views(image, np.random.default_rng(1), crops=5)
    assert [kind for kind, _ in views] == ["whole"] + ["crop"] * 5
    for kind, view in views:
        assert max(view.shape[:2]) == real_images.PHONE_SIDE
        if kind == "crop":  # 30-80% of the short side, 3:4 to 4:3, before enlarging
            assert 0.7 <= view.shape[1] / view.shape[0] <= 1.4
    again = real_images.views(image, np.random.default_rng(1), crops=5)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(views, again, strict=True))


def test_decode_reads_images_and_scipys_arrays() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok and np.array_equal(real_images._decode("x/a.png", png.tobytes()), rgb)
    face = np.arange(768 * 1024 * 3, dtype=np.uint32).astype(np.uint8).reshape(768, 1024, 3)
    assert np.array_equal(real_images._decode("scipy/misc/face.dat", bz2.compress(face.tobytes())), face)
    grey = np.arange(12).reshape(3, 4) * 20
    decoded = real_images._decode("scipy/misc/ascent.dat", pickle.dumps(grey))
    assert decoded.shape == (3, 4, 3) and np.array_equal(decoded[..., 2], grey.astype(np.uint8))
    with pytest.raises(ValueError, match="cannot decode"):
        real_images._decode("x/broken.jpg", b"not an image")


def test_report_photos_come_from_other_packages_than_the_development_ones() -> None:
    wheels = {
        role: {s.wheel.split("==")[0] for s in real_images.SOURCES if s.role == role}
        for role in ("development", "report")
    }
    assert wheels["development"] and wheels["report"]
    assert not wheels["development"] & wheels["report"]
    assert {s.role for s in real_images.SOURCES} == {"development", "report"}


def test_only_development_photos_are_fitted_and_only_for_not_skin_photo() -> None:
    development = {"set": "real", "part": "development"}
    report = {"set": "real", "part": "report"}
    assert fitted_on(development, "not_skin_photo")
    assert not fitted_on(report, "not_skin_photo")
    assert not fitted_on(development, "blurry")
    assert fitted_on({"set": "train", "part": "fit"}, "blurry")
    assert not fitted_on({"set": "valid", "part": "selection"}, "not_skin_photo")


def test_clip_bounds_clip_the_benign_side_at_the_median() -> None:
    x = np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 6.0], [3.0, 30.0, 7.0]])
    low, high = verdict.clip_bounds(x, ["a", "b", "c"], {"a": "low", "b": "high"})
    assert low == [2.0, None, None] and high == [None, 20.0, None]
    model = {"clip_low": low, "clip_high": high}
    assert verdict.clipped(np.array([0.0, 99.0, -5.0]), model).tolist() == [2.0, 20.0, -5.0]
    assert verdict.clipped(np.array([0.0, 99.0]), {}).tolist() == [0.0, 99.0]  # models without bounds: unchanged


def test_a_sharper_evenly_lit_close_up_is_no_more_doubted_than_the_median_skin() -> None:
    """Sharper or more evenly lit than the fitted skin is no reason to doubt a photo: the shipped model's logit
    must not rise with those measures beyond the median (the learned model refused such skin until clipped)."""
    model = verdict.load_models()["codes"]["not_skin_photo"]
    assert "clip_low" in model and "clip_high" in model
    values = assess(synthetic_skin_photo(0).rgb).measures
    base = verdict.logit(values, model)
    sharper = dict(values, detail_half_max=values["detail_half_max"] * 20, sharpness=values["sharpness"] * 20)
    sharper["log_sharpness"] = float(np.log(sharper["sharpness"]))
    assert verdict.logit(sharper, model) <= base + 1e-9
    assert verdict.logit(dict(values, uniformity=1.0), model) <= base + 1e-9


def test_synthetic_skin_photos_are_far_from_the_not_skin_threshold() -> None:
    model = verdict.load_models()["codes"]["not_skin_photo"]
    margins = [
        verdict.logit(assess(synthetic_skin_photo(s).rgb).measures, model) - model["threshold"] for s in range(6)
    ]
    assert max(margins) < -1.0, margins


def _forced(models: dict, code: str, logit: float) -> dict:
    """A copy of `models` whose `code` model answers `logit` above its threshold whatever the measures."""
    forced = copy.deepcopy(models)
    model = forced["codes"][code]
    model.pop("kind", None)
    model["coef"] = [0.0] * len(model["features"])
    model["intercept"] = model["threshold"] + logit
    model["mean"], model["scale"] = [0.0] * len(model["features"]), [1.0] * len(model["features"])
    model.pop("clip_low", None), model.pop("clip_high", None)
    return forced


def test_a_blur_code_hides_a_doubt_only_the_learned_model_has() -> None:
    values = assess(synthetic_skin_photo(3).rgb).measures
    models = _forced(_forced(verdict.load_models(), "not_skin_photo", 3.0), "blurry", 3.0)
    t = Thresholds()
    assert judge(values, t, models).retake_codes == ["blurry"]
    # the distance itself says so: the content code stands alone, as before
    far = judge(values, Thresholds(max_ood_distance=0.0), models)
    assert far.retake_codes == ["not_skin_photo"]
    # no blur: the learned model's doubt is reported
    assert judge(values, t, _forced(verdict.load_models(), "not_skin_photo", 3.0)).retake_codes == ["not_skin_photo"]
