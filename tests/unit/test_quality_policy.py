"""The gate's verdict on synthetic photos with one known fault each, and its robustness contract."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quality_gate import QualityReport, Thresholds, assess
from quality_gate.policy import BLUR_CODES, RETAKE_CODES, judge


def textured_skin(height: int = 960, width: int = 1280, seed: int = 0) -> np.ndarray:
    """Skin-tone image with pores (noise), blotches and red spots, like a close-up cheek."""
    rng = np.random.default_rng(seed)
    base = np.full((height, width, 3), (200, 150, 130), np.float32)
    blotches = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 8)
    base += (blotches / (blotches.std() + 1e-6) * 6)[..., None]
    base += rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    for _ in range(80):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(base, centre, int(rng.integers(3, 9)), (170, 90, 90), -1)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def skin() -> np.ndarray:
    return textured_skin()


def scaled(image: np.ndarray, gain: np.ndarray | float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def test_good_skin_photo_passes(skin: np.ndarray) -> None:
    report = assess(skin)
    assert report.accepted, report.measures
    assert report.retake_codes == [] and report.hints == []
    assert 0.0 < report.margin <= 1.0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (lambda im: scaled(im, 0.3), "too_dark"),
        (lambda im: scaled(im, 1.6), "too_bright"),
        (lambda im: cv2.GaussianBlur(im, (0, 0), 6), "blurry"),
        (lambda im: cv2.resize(im, (200, 150), interpolation=cv2.INTER_AREA), "low_resolution"),
        (
            lambda im: scaled(im, np.linspace(0.05, 1.0, im.shape[1], dtype=np.float32)[None, :, None]),
            "uneven_lighting",
        ),
    ],
    ids=["dark", "bright", "blur", "tiny", "gradient"],
)
def test_each_fault_raises_its_code(skin: np.ndarray, fault, code: str) -> None:
    report = assess(fault(skin))
    assert not report.accepted
    assert code in report.retake_codes, report.measures
    assert report.hints[report.retake_codes.index(code)] == RETAKE_CODES[code]


@pytest.mark.parametrize("colour", [(60, 170, 80), (50, 90, 200)], ids=["green", "blue"])
def test_green_or_blue_photo_is_not_a_skin_photo(skin: np.ndarray, colour: tuple[int, int, int]) -> None:
    texture = skin.astype(np.int16) - skin.mean((0, 1)).astype(np.int16)
    report = assess(np.clip(texture + colour, 0, 255).astype(np.uint8))
    assert report.retake_codes == ["not_skin_photo"]  # says what no_skin would, so no_skin is not repeated


@pytest.mark.parametrize("colour", [(60, 170, 80), (50, 90, 200)], ids=["green", "blue"])
def test_without_the_learned_verdict_a_green_or_blue_photo_has_no_skin(
    skin: np.ndarray, colour: tuple[int, int, int]
) -> None:
    texture = skin.astype(np.int16) - skin.mean((0, 1)).astype(np.int16)
    report = assess(np.clip(texture + colour, 0, 255).astype(np.uint8), Thresholds(learned_verdict=False))
    assert report.retake_codes == ["no_skin"]


def test_a_warm_colour_cast_is_not_a_photo_too_bright(skin: np.ndarray) -> None:
    """Under a tungsten cast the skin's red clips at the same light (here 40% of the skin); exposure is judged with
    the skin's light and its green channel, so the photo stays accepted, and the same skin brighter still is not."""
    from bench import gate_data as gd

    bright_skin = scaled(skin, 1.12)
    warm = assess(gd.white_balance(1.35, 0.7)(bright_skin))
    assert warm.measures["clipped_fraction"] > 0.3 and warm.measures["green_clipped_fraction"] == 0.0
    assert "too_bright" not in warm.retake_codes
    # judged as a photo of skin: this code-made skin, red-clipped, is too saturated for the content network
    assert judge(warm.measures, Thresholds(max_content_logit=math.inf)).accepted, warm.measures
    assert "too_bright" in assess(scaled(bright_skin, 1.6)).retake_codes


def test_blown_out_photo_says_too_bright_not_no_skin(skin: np.ndarray) -> None:
    report = assess(scaled(skin, 4.0))
    assert report.retake_codes == ["too_bright"]


def test_a_photo_too_small_is_told_so_not_to_refocus(skin: np.ndarray) -> None:
    """Rule H1: below the resolution bar the focus measures read px of a working copy the photo never reaches, so
    the only hint is the resolution one; the same measures with the bar lowered still say blur (the rule decides)."""
    small = cv2.resize(cv2.GaussianBlur(skin, (0, 0), 4), (200, 150), interpolation=cv2.INTER_AREA)
    report = assess(small)
    assert not report.accepted and report.retake_codes == ["low_resolution"], report.retake_codes
    assert BLUR_CODES & set(judge(report.measures, Thresholds(min_short_side=100)).retake_codes)


def test_thresholds_are_overridable_by_name(skin: np.ndarray) -> None:
    strict = Thresholds(min_short_side=5000)
    assert assess(skin, strict).retake_codes == ["low_resolution"]


def test_margin_is_small_when_only_just_passing(skin: np.ndarray) -> None:
    measured = assess(skin).measures["sharpness"]
    just = assess(skin, Thresholds(min_sharpness=measured * 0.98))
    assert just.accepted and just.margin < 0.05


def test_report_to_dict_is_json_serialisable(skin: np.ndarray) -> None:
    report = assess(scaled(skin, 0.3))
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"accepted", "retake_codes", "hints", "measures", "margin"}
    assert all(isinstance(v, float) for v in data["measures"].values())


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.full((1, 1, 3), 255, np.uint8),
        np.full((2, 7, 3), 128, np.uint8),
        np.repeat(np.linspace(0, 255, 400 * 500).reshape(400, 500, 1), 3, axis=2).astype(np.uint8),
    ],
    ids=["1x1-black", "1x1-white", "2x7", "grey-as-rgb"],
)
def test_degenerate_inputs_do_not_crash(image: np.ndarray) -> None:
    report = assess(image)
    assert isinstance(report, QualityReport) and not report.accepted
    assert set(report.retake_codes) <= set(RETAKE_CODES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 48), st.integers(1, 48), st.just(3)),
        elements=st.integers(0, 255),
    )
)
def test_assess_never_raises_on_random_arrays(image: np.ndarray) -> None:
    report = assess(image)
    assert set(report.retake_codes) <= set(RETAKE_CODES)
    assert len(report.hints) == len(report.retake_codes)
    assert 0.0 <= report.margin <= 1.0
    json.dumps(report.to_dict())


def test_a_zero_distance_limit_refuses_as_not_skin_photo_without_dividing_by_zero(skin: np.ndarray) -> None:
    """`max_ood_distance` is overridable by name; 0 (every photo is out of distribution) must not crash the verdict."""
    report = assess(skin, Thresholds(max_ood_distance=0.0))
    assert report.retake_codes == ["not_skin_photo"] and 0.0 <= report.margin <= 1.0


def test_a_shadow_edge_across_the_face_is_not_called_a_smear() -> None:
    """Motion blur leaves least detail along the smear; a shadow's edge leaves least detail across itself, where the
    light changes. With the light uneven and the two directions within `shadow_edge_degrees`, only the shadow's hint
    is given (the photo stays refused; `blurry`, which has no direction, stays when its own checks raise it); a smear
    in another direction keeps its own."""
    from bench import gate_data as gd
    from quality_gate.policy import judge

    measures = assess(gd.motion_blur(25, 0.0)(textured_skin(480, 640, seed=3))).measures
    assert measures["blur_angle"] % 180 < 10 or measures["blur_angle"] > 170  # a horizontal smear
    t = Thresholds()
    assert "motion_blur" in assess(gd.motion_blur(25, 0.0)(textured_skin(480, 640, seed=3))).retake_codes
    shadowed = measures | {"lighting_logit": t.max_lighting_logit + 2.0}
    along = judge(shadowed | {"light_angle": (measures["blur_angle"] + t.shadow_edge_degrees / 2) % 180}, t)
    across = judge(shadowed | {"light_angle": (measures["blur_angle"] + 90.0) % 180}, t)
    assert along.retake_codes[0] == "uneven_lighting" and "motion_blur" not in along.retake_codes
    assert not along.accepted
    assert set(across.retake_codes) == {"uneven_lighting", "motion_blur"}
    assert "motion_blur" in judge(measures | {"light_angle": measures["blur_angle"]}, t).retake_codes  # light even
    never = judge(shadowed | {"light_angle": measures["blur_angle"]}, Thresholds(shadow_edge_degrees=0.0))
    assert "motion_blur" in never.retake_codes  # the rule off, by name


def test_the_lighting_trees_can_be_turned_off_by_name(skin: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lighting_trees=False` leaves uneven_lighting to the lighting network and the floors (an ablation the bench
    replays with --thresholds); the other learned codes still count."""
    from quality_gate import verdict
    from quality_gate.policy import judge

    # the network under its threshold but not sure of even light (`lighting_sure_even`): the trees may speak
    measures = assess(skin).measures | {"lighting_logit": Thresholds().max_lighting_logit - 1.0}
    real = verdict.logits
    monkeypatch.setattr(verdict, "logits", lambda values, models=None: real(values, models) | {"uneven_lighting": 1.0})
    assert judge(measures, Thresholds()).retake_codes == ["uneven_lighting"]
    assert judge(measures, Thresholds(lighting_trees=False)).accepted
    monkeypatch.setattr(verdict, "logits", lambda values, models=None: real(values, models) | {"too_dark": 1.0})
    assert judge(measures, Thresholds(lighting_trees=False)).retake_codes == ["too_dark"]


# (learned code, the network's measure, its threshold, the margin that makes it sure): rules C1 and C2
SURE_NETWORKS = [
    ("not_skin_photo", "content_logit", "max_content_logit", "content_sure_skin"),
    ("uneven_lighting", "lighting_logit", "max_lighting_logit", "lighting_sure_even"),
]


@pytest.mark.parametrize(("code", "measure", "limit", "margin"), SURE_NETWORKS)
def test_a_network_sure_of_the_fine_side_overrules_its_learned_model_alone(
    skin: np.ndarray, monkeypatch: pytest.MonkeyPatch, code: str, measure: str, limit: str, margin: str
) -> None:
    """Rule C1: the learned not_skin_photo model reads the skin's colour and took darker, saturated skin for something
    else; rule C2: the lighting trees read quantiles and tilts of the skin's light, which tone copies move as much as a
    mild fault. When the matching network is `margin` below its threshold, the learned model alone does not refuse;
    it still does when the network is unsure, when the rule is off (-inf, by name) or the network is (inf), and the
    network itself still refuses."""
    from quality_gate import verdict

    t = Thresholds()
    measures = assess(skin).measures
    real = verdict.logits
    monkeypatch.setattr(verdict, "logits", lambda values, models=None: real(values, models) | {code: 1.0})
    sure = measures | {measure: getattr(t, limit) + getattr(t, margin) - 0.5}
    unsure = measures | {measure: getattr(t, limit) + getattr(t, margin) + 0.5}
    assert judge(sure, t).accepted
    assert judge(unsure, t).retake_codes == [code]
    assert judge(sure, Thresholds(**{margin: -math.inf})).retake_codes == [code]
    assert judge(sure, Thresholds(**{limit: math.inf})).retake_codes == [code]
    monkeypatch.setattr(verdict, "logits", real)
    assert judge(sure | {measure: getattr(t, limit) + 5.0}, t).retake_codes == [code]


def test_the_distance_still_refuses_what_the_content_network_is_sure_is_skin(skin: np.ndarray) -> None:
    """Rule C1 silences the learned not_skin_photo model only: beyond the distance's limit a photo is refused."""
    t = Thresholds()
    sure = assess(skin).measures | {"content_logit": t.max_content_logit + t.content_sure_skin - 0.5}
    assert judge(sure, Thresholds(max_ood_distance=0.0)).retake_codes == ["not_skin_photo"]
