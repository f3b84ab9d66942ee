"""Real non-skin photos for the gate's bench (issue 12): views, decoding, roles, who may be fitted on them; and the
verdict's precedence once the not_skin_photo model reads fine detail.

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
from bench.gate_data import grade_of
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


def test_grade_of_reads_the_acne04_grade_from_the_name() -> None:
    assert grade_of("levle3_37_jpg.rf.206570ccf4673fb6b3fb39cfb8810be6.jpg") == "3"
    assert grade_of("/data/train/images/levle0_1_jpg.rf.x.jpg") == "0"
    assert grade_of("chelsea") == "" and grade_of("fur-1001") == ""


def _forced(models: dict, code: str, logit: float) -> dict:
    """A copy of `models` whose `code` model answers `logit` above its threshold whatever the measures."""
    forced = copy.deepcopy(models)
    model = forced["codes"][code]
    model.pop("kind", None)
    model["coef"] = [0.0] * len(model["features"])
    model["intercept"] = model["threshold"] + logit
    model["mean"], model["scale"] = [0.0] * len(model["features"]), [1.0] * len(model["features"])
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


def test_decode_reads_pywavelets_arrays_and_wheel_names_match_whatever_their_case(tmp_path, monkeypatch) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, aero=np.arange(12.0).reshape(3, 4) * 30)
    decoded = real_images._decode("pywt/data/aero.npz", buffer.getvalue())
    assert decoded.shape == (3, 4, 3) and decoded[2, 3, 0] == 255  # 330 clipped
    monkeypatch.setattr(real_images, "CACHE", tmp_path)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "pywavelets-1.9.0-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    assert real_images.wheel_path("PyWavelets==1.9.0") is not None
    assert real_images.wheel_path("PyWavelets==1.8.0") is None
