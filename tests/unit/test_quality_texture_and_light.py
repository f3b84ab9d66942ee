"""Issue 12, second round: colour noise and stroke textures are not skin, side light on a face is uneven lighting,
and the light's spread over the skin is measured (a shadow over half of it reads as such).

Every image is generated here (none of the bench's generators: these are the gate's contract, not its fit data).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from detector.synthetic import synthetic_skin_photo
from quality_gate import Thresholds, assess, measures
from quality_gate.policy import image_measures, judge
from quality_gate.skin import deep_shadow, skin_mask
from tests.conftest import skin_photo


def colour_noise(seed: int = 0, sigma: float = 40.0, blur: float = 0.8) -> np.ndarray:
    """Independent noise in R, G and B (a broken upload, a sensor with the lens cap on)."""
    rng = np.random.default_rng(seed)
    field = rng.normal(128, sigma, (640, 640, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(field, (0, 0), blur), 0, 255).astype(np.uint8)


def strokes(seed: int = 0, count: int = 7000) -> np.ndarray:
    """Short strokes in skin-like browns along a slowly turning direction: fur, hair, a brush painting."""
    rng = np.random.default_rng(seed)
    image = np.zeros((640, 640, 3), np.float32) + np.array([185, 135, 100], np.float32)
    flow = cv2.GaussianBlur(rng.normal(0, 1, (640, 640)).astype(np.float32), (0, 0), 80)
    flow = flow / (flow.std() + 1e-6) * 0.8
    for _ in range(count):
        x, y = int(rng.integers(0, 640)), int(rng.integers(0, 640))
        angle = float(flow[y, x]) + 0.6
        length = float(rng.uniform(10, 22))
        end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
        shade = float(rng.uniform(0.55, 1.2))
        cv2.line(image, (x, y), end, (200 * shade, 140 * shade, 100 * shade), 1, cv2.LINE_AA)
    return np.clip(image, 0, 255).astype(np.uint8)


def face_on_dark_room(side_light_stops: float = 0.0, angle: float = 0.0, shadow_stops: float = 0.0) -> np.ndarray:
    """A skin-coloured oval filling most of a dark frame, lit evenly, or with light falling off across the frame
    by `side_light_stops`, or with a shadow `shadow_stops` deep over the half of the frame `angle` points away
    from (soft edge 10% of the frame wide); both in linear light, as a lamp to one side or a hand in its way does."""
    photo = synthetic_skin_photo(5, 640, 640, spots=12).rgb
    yy, xx = np.mgrid[0:640, 0:640].astype(np.float32)
    oval = ((xx - 320) / 230) ** 2 + ((yy - 330) / 290) ** 2 < 1.0
    image = np.where(oval[..., None], photo, np.uint8(14)).astype(np.uint8)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    t = (xx - 320) * c + (yy - 320) * s
    t = (t - t.min()) / (t.max() - t.min())
    stops = side_light_stops * (1.0 - t) + shadow_stops * np.clip((0.5 - t) / 0.1 + 0.5, 0.0, 1.0)
    if side_light_stops or shadow_stops:
        linear = cv2.LUT(image, measures.LINEAR_LUT) * (2.0**-stops)[..., None]
        srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.maximum(linear, 0) ** (1 / 2.4) - 0.055)
        image = np.clip(srgb * 255 + 0.5, 0, 255).astype(np.uint8)
    return image


# --- the measures --------------------------------------------------------------------------------------------------


def test_colour_detail_tells_colour_noise_from_skin_texture() -> None:
    everything = np.ones((320, 320), bool)
    noise = measures.fine_texture(cv2.resize(colour_noise(), (320, 320), interpolation=cv2.INTER_AREA), everything)
    skin = measures.fine_texture(cv2.resize(skin_photo(seed=1), (320, 320), interpolation=cv2.INTER_AREA), everything)
    assert noise[0] > 0.5 > 0.1 > skin[0]


def test_fine_coherence_tells_strokes_from_pores() -> None:
    everything = np.ones((320, 320), bool)
    fur = measures.fine_texture(cv2.resize(strokes(), (320, 320), interpolation=cv2.INTER_AREA), everything)
    skin = measures.fine_texture(cv2.resize(skin_photo(seed=1), (320, 320), interpolation=cv2.INTER_AREA), everything)
    assert fur[1] > 0.5 > 0.3 > skin[1]
    assert fur[2] > 2 * skin[2]


def test_light_slope_reads_a_ramp_and_ignores_a_dome() -> None:
    """log2 light rising 2 stops across the frame reads ~2; a dome (bright centre, darker rim) reads ~0."""
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    mask = np.ones((240, 320), bool)
    ramp = 0.2 * 2.0 ** (2.0 * xx / 320)
    dome = 0.2 * 2.0 ** (-3.0 * (((xx - 160) / 160) ** 2 + ((yy - 120) / 160) ** 2))
    assert measures.light_gradient(measures.light_grid(ramp.astype(np.float32), mask))[2] == pytest.approx(2.0, abs=0.2)
    assert measures.light_gradient(measures.light_grid(dome.astype(np.float32), mask))[2] < 0.2


@pytest.mark.parametrize("direction", [0.0, 45.0, 90.0, 135.0])
def test_light_angle_is_the_direction_the_light_changes_along(direction: float) -> None:
    """In image coordinates, modulo 180, as `blur_angle`: light rising to the right reads 0, downward 90."""
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    along = (xx - 160) * np.cos(np.radians(direction)) + (yy - 120) * np.sin(np.radians(direction))
    light = (0.2 * 2.0 ** (2.0 * along / 320)).astype(np.float32)
    for field in (light, light[::-1, ::-1].copy()):  # falling the other way: the same line
        angle = measures.light_gradient(measures.light_grid(field, np.ones((240, 320), bool)))[3]
        assert min(abs(angle - direction), 180 - abs(angle - direction)) < 2.0


def test_light_levels_read_a_shadow_over_half_the_skin() -> None:
    """Even light: no spread, nothing shadowed. A 3-stop shadow over the left half: the lit part keeps its level,
    the spread is ~3 stops and about half the skin is more than 2 stops below the lit part; the whole frame tilts."""
    xx = np.mgrid[0:240, 0:320][1].astype(np.float32)
    mask = np.ones((240, 320), bool)
    even = measures.light_levels(measures.light_grid(np.full((240, 320), 0.18, np.float32), mask))
    assert even["light_spread"] == pytest.approx(0.0, abs=1e-3)
    assert even["light_q80"] == pytest.approx(0.0, abs=1e-3)  # stops from mid grey
    assert even["shadowed_1"] == 0.0 and even["frame_gradient"] < 1e-3
    shadow = (0.18 * np.where(xx < 160, 2.0**-3, 1.0)).astype(np.float32)
    shaded = measures.light_levels(measures.light_grid(shadow, mask))
    assert shaded["light_q80"] == pytest.approx(0.0, abs=1e-3)
    assert shaded["light_spread"] == pytest.approx(3.0, abs=0.1)
    assert shaded["shadowed_2"] == pytest.approx(0.5, abs=0.05)
    ramp = (0.18 * 2.0 ** (2.0 * xx / 320)).astype(np.float32)
    assert measures.light_levels(measures.light_grid(ramp, mask))["frame_gradient"] == pytest.approx(2.0, abs=0.1)


# --- the verdict ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_colour_noise_is_not_a_skin_photo(seed: int) -> None:
    report = assess(colour_noise(seed, sigma=25.0 + 15 * seed, blur=0.5 + 0.5 * seed))
    assert report.retake_codes == ["not_skin_photo"], report.measures


@pytest.mark.parametrize("seed", [0, 1])
def test_stroke_texture_is_not_a_skin_photo(seed: int) -> None:
    report = assess(strokes(seed))
    assert report.retake_codes == ["not_skin_photo"], report.measures


@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_synthetic_skin_photos_pass_every_quality_check(seed: int) -> None:
    """Code-made skin is well exposed, sharp and evenly lit; whether it is a photo of skin is the content network's
    call, and for some of these flat, saturated drawings it says no (`content_cnn`): nothing else refuses them."""
    report = assess(synthetic_skin_photo(seed).rgb)
    assert set(report.retake_codes) <= {"not_skin_photo"}, (report.retake_codes, report.measures)
    if report.retake_codes:
        assert report.measures["content_logit"] > Thresholds().max_content_logit
    assert judge(report.measures, Thresholds(max_content_logit=math.inf)).accepted


def test_evenly_lit_face_on_a_dark_room_passes() -> None:
    report = assess(face_on_dark_room())
    assert report.accepted, (report.retake_codes, report.measures)


@pytest.mark.parametrize("angle", [0.0, 90.0, 200.0])
def test_side_lit_face_is_uneven_lighting(angle: float) -> None:
    """Strong side light (5 stops across the frame). 2-3 stops are not caught yet: ACNE04's own faces against dark
    rooms show as much tilt (see the note on issue 12)."""
    report = assess(face_on_dark_room(5.0, angle))
    assert "uneven_lighting" in report.retake_codes, report.measures


def test_face_half_in_a_4_stop_shadow_is_mostly_uneven_lighting() -> None:
    """The boosted uneven-lighting model catches a 4-stop shadow over half a face in most directions (3 of 4 here;
    ~53% of real selection photos with such a shadow over 30-60% of the frame)."""
    caught = [
        "uneven_lighting" in assess(face_on_dark_room(shadow_stops=4.0, angle=angle)).retake_codes
        for angle in (0.0, 90.0, 200.0, 300.0)
    ]
    assert sum(caught) >= 3, caught


@pytest.mark.parametrize("stops", [6.0, 8.0])
def test_face_half_in_a_very_deep_shadow_is_uneven_lighting(stops: float) -> None:
    """Beyond ~5 stops the shadowed skin leaves the skin mask; its colour in linear light still says skin."""
    report = assess(face_on_dark_room(shadow_stops=stops))
    assert "uneven_lighting" in report.retake_codes, report.measures
    assert report.measures["deep_shadow"] > 0.5


def test_deep_shadow_is_not_a_half_face_against_a_dark_room() -> None:
    """A face that fills half the frame beside a dark room (ACNE04's profile photos) has no deep shadow: the room is
    dark but not skin-coloured in linear light. An evenly lit face has none either."""
    half_face = face_on_dark_room()
    half_face[:, :320] = np.uint8(14)
    for image in (half_face, face_on_dark_room()):
        report = assess(image)
        assert report.measures["deep_shadow"] < 0.1, report.measures
        assert "uneven_lighting" not in report.retake_codes


def test_deep_shadow_measures_the_shadowed_half() -> None:
    """Half the face 6 stops down: the skin-coloured area below the mask's floor is about as large as the lit half
    (the penumbra and the lit half's own darker rim move it a little)."""
    image = face_on_dark_room(shadow_stops=6.0)
    half = measures.working_copy(image, 320)
    brightest = measures.max_channel(half)
    skin = skin_mask(half, 0.05, brightest)
    assert 0.6 < deep_shadow(half, skin, brightest) < 1.4


def test_new_measures_are_reported() -> None:
    values = image_measures(skin_photo(seed=1), Thresholds())
    assert {
        "colour_detail",
        "fine_coherence",
        "oriented_detail",
        "light_slope",
        "deep_shadow",
        *measures.LIGHT_LEVEL_NAMES,
    } <= set(values)


def test_boosted_trees_are_served_exactly_as_fitted() -> None:
    """The uneven-lighting model is boosted trees exported to JSON: served in plain Python, it must give the fitted
    model's own log-odds, and the interaction a single linear score cannot express."""
    import json

    from sklearn.ensemble import GradientBoostingClassifier

    from bench.fit_quality_gate import TREES, export_trees
    from quality_gate import verdict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(float)  # XOR: no linear model does better than chance
    fitted = GradientBoostingClassifier(**TREES, random_state=0).fit(x, y)
    served = json.loads(json.dumps(export_trees(fitted, x)))
    test = rng.normal(size=(200, 4))
    ours = np.array([verdict.tree_logit(row, served) for row in test])
    np.testing.assert_allclose(ours, fitted.decision_function(test), rtol=1e-6, atol=1e-6)
    truth = (test[:, 0] > 0) != (test[:, 1] > 0)
    assert np.mean((ours > 0) == truth) > 0.9


def test_sensor_noise_after_blur_barely_reads_as_sharpness() -> None:
    """A phone adds noise after the blur; the Laplacian reads that noise as detail. The sharpness measure takes the
    Laplacian of a 3x3 median, which removes most single-pixel noise: noise inflates it far less than the raw one."""
    blurred = cv2.GaussianBlur(skin_photo(seed=1), (0, 0), 2.0)
    rng = np.random.default_rng(0)
    noisy = np.clip(blurred + rng.normal(0, 3, blurred.shape), 0, 255).astype(np.uint8)
    served = [image_measures(image, Thresholds())["sharpness"] for image in (blurred, noisy)]
    lumas = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (blurred, noisy)]
    everywhere = np.ones(lumas[0].shape, bool)
    raw = [measures.sharpness(luma, everywhere) for luma in lumas]
    assert raw[1] / raw[0] > 5.0  # the plain Laplacian: noise looks like a sharp photo's detail
    assert served[1] / served[0] < 3.0


def test_magnitude_is_correctly_rounded_wherever_its_buffers_sit() -> None:
    """The same gradients give the same magnitudes bit for bit at any memory alignment, and equal to the root taken
    in double precision then rounded: a measure read off a quantile of them cannot change from call to call (OpenCV's
    `magnitude` approximates the root and rounds some elements differently by alignment)."""
    rng = np.random.default_rng(0)
    gx, gy = (rng.integers(-1020, 1021, (96, 128)).astype(np.float32) for _ in range(2))
    exact = np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2).astype(np.float32)
    for offset in range(8):
        planes = []
        for plane in (gx, gy):
            buffer = np.empty(plane.size + 8, np.float32)
            view = buffer[offset : offset + plane.size].reshape(plane.shape)
            view[...] = plane
            planes.append(view)
        assert np.array_equal(measures.magnitude(*planes), exact), offset
