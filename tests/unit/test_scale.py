"""Scale normalisation: the skin-extent estimate follows resampling, findings map back to the photo at every
scale and framing, and reduced JPEG decoding and metadata stripping keep what they promise."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image

from detector.model_card import ModelCard
from detector.onnx_runtime import Detector
from detector.scale import Region, apply_plan, locate_skin, plan_scale, to_crop, to_photo
from pipelines.cases.analysis import load_pixels
from pipelines.cases.photos import decode_photo, decode_stored, load_stored, strip_jpeg_metadata
from tests.conftest import encode, skin_photo

SPOTS = [(150.0, 180.0), (300.0, 260.0), (420.0, 330.0), (250.0, 400.0)]  # photo pixels at 1x
SPOT_RADIUS = 9.0


def framed_photo(canvas: tuple[int, int] = (800, 640)) -> np.ndarray:
    """A 480x400 patch of skin at (100, 100) on a blue-grey wall, with pure red markers at SPOTS."""
    width, height = canvas
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (70, 90, 120)
    img[100:500, 100:580] = skin_photo(480, 400, seed=3, spots=0)
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy in SPOTS:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= SPOT_RADIUS**2] = (255, 0, 0)
    return img


def resample(rgb: np.ndarray, k: float) -> np.ndarray:
    if k == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)


class MarkerSession:
    """A stand-in network that 'detects' the pure red markers in whatever input it is fed (network pixels)."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, _names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feed.values()))
        self.shapes.append(batch.shape)
        out = np.zeros((batch.shape[0], 5, 16), np.float32)
        for i, image in enumerate(batch):
            red = ((image[0] > 0.75) & (image[1] < 0.3) & (image[2] < 0.3)).astype(np.uint8)
            n, _, stats, centroids = cv2.connectedComponentsWithStats(red)
            for j in range(1, min(n, 17)):
                out[i, 0:2, j - 1] = centroids[j]
                out[i, 2:4, j - 1] = (stats[j, cv2.CC_STAT_WIDTH], stats[j, cv2.CC_STAT_HEIGHT])
                out[i, 4, j - 1] = 0.9
        return [out]


def marker_detector(**card: object) -> tuple[Detector, MarkerSession]:
    session = MarkerSession()
    base = {
        "version": "markers-1",
        "weights": "none.pt",
        "class_names": ["lesion"],
        "operating_conf": 0.25,
        "skin_extent_px": 400.0,
        "tile_size": 672,
    }
    return Detector(ModelCard(**{**base, **card}), session), session  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0.75, 2.0, 4.0, 6.0])
def test_the_skin_extent_follows_resampling(k: float) -> None:
    photo = framed_photo()
    base = locate_skin(photo)
    scaled = locate_skin(resample(photo, k))
    assert base is not None and scaled is not None
    assert base.extent == pytest.approx(480, rel=0.03)  # the skin patch, not the frame
    assert scaled.extent == pytest.approx(k * base.extent, rel=0.02)
    assert (scaled.x0, scaled.y0) == pytest.approx((k * base.x0, k * base.y0), rel=0.03, abs=2 * k)


def test_the_plan_crops_to_the_skin_and_brings_it_to_the_reference() -> None:
    plan = plan_scale(4000, 3000, Region(1000, 500, 3000, 2500), 600.0)
    assert plan.factor == pytest.approx(0.3)
    assert (plan.x0, plan.y0, plan.x1, plan.y1) == (920, 420, 3080, 2580)  # 4% margin each side
    assert plan_scale(4000, 3000, None, None).factor == 1.0  # an old card keeps the photo's own scale
    image = np.zeros((3000, 4000, 3), np.uint8)
    scaled = apply_plan(image, plan)
    assert scaled.shape[:2] == (648, 648)
    back = to_photo(np.array([[0, 0, 648, 648]], np.float32), plan, scaled.shape[:2])
    assert back[0].tolist() == pytest.approx([920, 420, 3080, 2580])
    assert to_crop(back, plan, scaled.shape[:2])[0].tolist() == pytest.approx([0, 0, 648, 648])


def test_the_crop_is_a_square_around_the_skin_like_the_training_framing() -> None:
    wide = plan_scale(4000, 3000, Region(1000, 1200, 3000, 1800), 600.0)  # 2000 x 600 px of skin
    assert (wide.x1 - wide.x0, wide.y1 - wide.y0) == (2160, 2160)
    assert (wide.x0 + wide.x1) / 2 == pytest.approx(2000) and (wide.y0 + wide.y1) / 2 == pytest.approx(1500)
    edge = plan_scale(4000, 3000, Region(0, 0, 1000, 1000), 600.0)  # pushed inside the photo, not cut short
    assert (edge.x0, edge.y0, edge.x1, edge.y1) == (0, 0, 1080, 1080)


def test_skin_already_at_the_training_scale_is_not_resampled() -> None:
    """Within the card's tolerance the photo is used as it is (cropped only when taken from further away)."""
    at_scale = plan_scale(640, 640, Region(20, 20, 620, 620), 598.0, tolerance=1.25)
    assert (at_scale.x0, at_scale.y0, at_scale.x1, at_scale.y1, at_scale.factor) == (0, 0, 640, 640, 1.0)
    further = plan_scale(1280, 1280, Region(330, 330, 950, 950), 598.0, tolerance=1.25)
    assert further.factor == 1.0 and (further.x0, further.x1) == (305, 975)
    bigger = plan_scale(960, 720, Region(324, 6, 954, 714), 598.0, tolerance=1.25, max_side=672)
    assert bigger.factor == pytest.approx(598 / 708)  # at its own scale it would take several passes
    smaller = plan_scale(640, 640, Region(100, 100, 540, 540), 598.0, tolerance=1.25)
    assert smaller.factor == pytest.approx(598 / 440)
    with pytest.raises(ValueError, match="scale_tolerance"):
        ModelCard(version="v", weights="w.pt", class_names=["lesion"], scale_tolerance=0.5)


@pytest.mark.parametrize("k", [0.75, 1.0, 2.0, 4.0, 6.0])
def test_findings_map_back_to_the_photo_at_every_scale(k: float) -> None:
    """Upload -> sanitise -> reduced decode -> normalise -> network -> photo pixels, as the API does it."""
    detector, session = marker_detector()
    photo = decode_photo(encode(resample(framed_photo(), k), quality=95), max_pixels=100_000_000)
    pixels = load_pixels(photo.jpeg, detector)
    detection = detector.predict(pixels.rgb).scaled(*pixels.scale)
    centres = sorted(((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in detection.findings)
    assert len(centres) == len(SPOTS)
    for (cx, cy), (ex, ey) in zip(centres, sorted(SPOTS), strict=True):
        assert cx == pytest.approx(k * ex, abs=1.5 * k + 1) and cy == pytest.approx(k * ey, abs=1.5 * k + 1)
    # the network saw the skin at the same scale whatever the capture resolution
    height, width = session.shapes[0][2:]
    assert max(height, width) == pytest.approx(448, abs=32)  # 400 px of skin + margins, stride-padded


def test_a_photo_taken_from_further_away_is_cropped_to_its_skin() -> None:
    detector, session = marker_detector()
    near = framed_photo()
    far = np.full((1600, 2000, 3), (70, 90, 120), np.uint8)
    far[500:1140, 600:1400] = near  # the same skin in the middle of a much larger frame
    detection = detector.predict(far)
    assert detection.extras["crop"][0] > 600 and detection.extras["crop"][2] < 1400
    centres = sorted(((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in detection.findings)
    assert centres == [pytest.approx((x + 600, y + 500), abs=1.5) for x, y in sorted(SPOTS)]
    assert max(session.shapes[0][2:]) <= 480


def test_large_jpegs_decode_at_reduced_size_with_the_scale_to_photo_pixels() -> None:
    jpeg = encode(resample(framed_photo(), 5.0), quality=90)  # 4000 x 3200
    pixels = decode_stored(jpeg, min_long_side=1280)
    assert max(pixels.rgb.shape[:2]) >= 1280 and pixels.rgb.shape[1] == 2000
    assert pixels.scale == (2.0, 2.0)
    small = decode_stored(encode(framed_photo()), min_long_side=1280)
    assert small.scale == (1.0, 1.0) and small.rgb.shape == (640, 800, 3)


def _camera_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0)}
    buf = io.BytesIO()
    Image.fromarray(skin_photo(320, 240, seed=2)).save(buf, format="JPEG", exif=exif, comment=b"secret note")
    data = buf.getvalue()
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPS 48.8</x:xmpmeta>"
    xmp_segment = b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
    return data[:2] + xmp_segment + data[2:] + b"MPF trailing image bytes"


def test_upright_jpegs_are_stored_losslessly_without_metadata() -> None:
    data = _camera_jpeg(orientation=1)
    photo = decode_photo(data, max_pixels=10_000_000)
    assert np.array_equal(load_stored(photo.jpeg), load_stored(data))  # not one pixel changed
    assert len(photo.jpeg) < len(data)
    for secret in (b"Exif", b"TestCam", b"xmpmeta", b"secret note", b"MPF trailing"):
        assert secret not in photo.jpeg
    with Image.open(io.BytesIO(photo.jpeg)) as stored:
        assert not stored.getexif() and "comment" not in stored.info


def test_rotated_jpegs_are_re_encoded_upright_without_metadata() -> None:
    photo = decode_photo(_camera_jpeg(orientation=6), max_pixels=10_000_000)
    assert (photo.width, photo.height) == (240, 320)
    assert b"TestCam" not in photo.jpeg and b"xmpmeta" not in photo.jpeg


def test_strip_refuses_what_is_not_a_jpeg() -> None:
    with pytest.raises(ValueError):
        strip_jpeg_metadata(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError):
        strip_jpeg_metadata(b"\xff\xd8\xff\xe1\x00\x10Exif")  # cut inside a segment


def test_card_validates_the_skin_extent() -> None:
    with pytest.raises(ValueError, match="skin_extent_px"):
        ModelCard(version="v", weights="w.pt", class_names=["lesion"], skin_extent_px=5.0)
