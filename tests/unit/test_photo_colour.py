"""Colour management of uploads: a phone's wide-gamut (Display P3) photo reaches the gate and the detector as sRGB.

The P3 profile is made in code (`bench.gate_data.display_p3_profile`); littleCMS reads it as it reads a phone's.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from bench import gate_data as gd
from pipelines.cases import colour
from pipelines.cases.photos import decode_photo, decode_stored, load_stored, load_stored_or_none, srgb_jpeg
from tests.conftest import skin_photo

MAX_PIXELS = 60_000_000


def _smooth_skin(height: int = 300, width: int = 400) -> np.ndarray:
    """Skin with red patches (lesion-like colour), smooth enough that JPEG changes it by a level or two."""
    image = skin_photo(width, height, seed=11).astype(np.float32)
    yy, xx = np.mgrid[:height, :width]
    for cy, cx in ((80, 100), (200, 300), (150, 220)):
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 12.0**2))[..., None]
        image = image * (1 - 0.6 * spot) + np.array([200, 60, 60], np.float32) * 0.6 * spot
    blurred = np.asarray(Image.fromarray(image.clip(0, 255).astype(np.uint8)).resize((width // 4, height // 4)))
    return np.asarray(Image.fromarray(blurred).resize((width, height), Image.BICUBIC))


def _png(image: np.ndarray, profile: bytes | None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", icc_profile=profile)
    return buffer.getvalue()


def _mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def p3_profile() -> bytes:
    return gd.display_p3_profile()


def test_the_code_made_p3_profile_agrees_with_the_p3_matrix(p3_profile: bytes) -> None:
    """littleCMS through the made profile and the bench's own matrix give the same P3 values (one level of rounding):
    the profile is Display P3, so the tests below test conversion from P3, not from some other space."""
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    to_p3 = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
        ImageCms.ImageCmsProfile(io.BytesIO(p3_profile)),
        "RGB",
        "RGB",
    )
    by_lcms = np.asarray(ImageCms.applyTransform(Image.fromarray(image), to_p3))
    assert np.abs(by_lcms.astype(int) - gd.as_display_p3(image).astype(int)).max() <= 1


def test_p3_jpeg_keeps_its_bytes_and_profile_and_is_read_as_srgb(p3_profile: bytes) -> None:
    scene = _smooth_skin()
    upload = gd.tagged_jpeg(gd.as_display_p3(scene), p3_profile)
    photo = decode_photo(upload, max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(photo.jpeg)) as stored:
        assert stored.info.get("icc_profile") == p3_profile  # a browser (the review page) shows it right
    managed = decode_stored(photo.jpeg, min_long_side=10_000).rgb
    naive = np.asarray(Image.open(io.BytesIO(photo.jpeg)).convert("RGB"))
    assert _mean_error(managed, scene) < 1.0
    assert _mean_error(naive, scene) > 2.0 * _mean_error(managed, scene) + 0.5  # what reading it as sRGB costs
    # the redness of a lesion: its red minus green, as the scene has it, not dulled
    lesion = (slice(70, 90), slice(90, 110))

    def red_green(image: np.ndarray) -> float:
        return float(image[lesion][..., 0].astype(int).mean() - image[lesion][..., 1].astype(int).mean())

    assert abs(red_green(managed) - red_green(scene)) < 2.0
    assert red_green(naive) < red_green(scene) - 5.0
    np.testing.assert_array_equal(load_stored(photo.jpeg), decode_stored(photo.jpeg, min_long_side=10_000).rgb)


def test_reduced_decode_is_converted_too(p3_profile: bytes) -> None:
    scene = _smooth_skin(600, 800)
    photo = decode_photo(gd.tagged_jpeg(gd.as_display_p3(scene), p3_profile), max_pixels=MAX_PIXELS)
    pixels = decode_stored(photo.jpeg, min_long_side=200)
    assert pixels.rgb.shape[1] < 800  # a reduced decode
    reference = np.asarray(Image.fromarray(scene).resize(pixels.rgb.shape[1::-1], Image.BOX))
    assert _mean_error(pixels.rgb, reference) < 1.5


def test_reencoded_upload_is_stored_as_srgb_without_profile(p3_profile: bytes) -> None:
    scene = _smooth_skin()
    photo = decode_photo(_png(gd.as_display_p3(scene), p3_profile), max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(photo.jpeg)) as stored:
        assert "icc_profile" not in stored.info
        assert _mean_error(np.asarray(stored.convert("RGB")), scene) < 1.0


def test_rotated_p3_jpeg_is_converted_after_turning(p3_profile: bytes) -> None:
    scene = _smooth_skin()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(gd.as_display_p3(scene)).save(buffer, format="JPEG", quality=95, icc_profile=p3_profile, exif=exif)
    photo = decode_photo(buffer.getvalue(), max_pixels=MAX_PIXELS)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))).convert("RGB"))
    assert (photo.width, photo.height) == (upright.shape[1], upright.shape[0])
    assert _mean_error(load_stored(photo.jpeg), np.rot90(scene, k=-1)) < 1.0


def test_srgb_tagged_and_untagged_photos_are_left_bit_exact() -> None:
    """Most Android phones tag sRGB: nothing to convert, not a level changes, no re-encode."""
    scene = _smooth_skin()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = gd.tagged_jpeg(scene, srgb)
    untagged = gd.tagged_jpeg(scene, b"")
    assert "icc_profile" not in Image.open(io.BytesIO(untagged)).info
    np.testing.assert_array_equal(load_stored(tagged), load_stored(untagged))
    assert srgb_jpeg(tagged) is tagged
    assert srgb_jpeg(untagged) is untagged


def test_srgb_jpeg_converts_for_readers_that_ignore_profiles(p3_profile: bytes) -> None:
    scene = _smooth_skin()
    stored = decode_photo(gd.tagged_jpeg(gd.as_display_p3(scene), p3_profile), max_pixels=MAX_PIXELS).jpeg
    export = srgb_jpeg(stored)
    with Image.open(io.BytesIO(export)) as image:
        assert "icc_profile" not in image.info
        assert _mean_error(np.asarray(image.convert("RGB")), scene) < 1.5


def test_unreadable_profile_is_ignored_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    scene = _smooth_skin()
    broken = gd.display_p3_profile()[:200] + b"\x00" * 40  # header intact, tags cut off
    with caplog.at_level(logging.WARNING, logger="pipelines.cases.photos"):
        photo = decode_photo(gd.tagged_jpeg(scene, broken), max_pixels=MAX_PIXELS)
        rgb = load_stored(photo.jpeg)
    assert _mean_error(rgb, scene) < 1.0  # taken as sRGB
    assert any("ICC profile" in record.getMessage() for record in caplog.records)
    assert all(str(len(photo.jpeg)) not in record.getMessage() for record in caplog.records)


def test_to_srgb_leaves_modes_it_does_not_convert(p3_profile: bytes) -> None:
    grey = Image.fromarray(_smooth_skin()[..., 1])
    grey.info["icc_profile"] = p3_profile
    assert colour.to_srgb(grey) is grey


def test_background_readers_get_srgb_or_none(p3_profile: bytes) -> None:
    """The heatmap and the missed-lesion sweep run the detector on stored photos: sRGB too, None when damaged."""
    scene = _smooth_skin()
    stored = decode_photo(gd.tagged_jpeg(gd.as_display_p3(scene), p3_profile), max_pixels=MAX_PIXELS).jpeg
    rgb = load_stored_or_none(stored)
    assert rgb is not None and _mean_error(rgb, scene) < 1.0
    assert load_stored_or_none(stored[: len(stored) // 3]) is None
    assert load_stored_or_none(b"not an image") is None


def test_a_p3_screenshot_with_alpha_is_stored_as_srgb(p3_profile: bytes) -> None:
    scene = _smooth_skin()
    rgba = np.dstack([gd.as_display_p3(scene), np.full(scene.shape[:2], 255, np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", icc_profile=p3_profile)
    photo = decode_photo(buffer.getvalue(), max_pixels=MAX_PIXELS)
    assert _mean_error(load_stored(photo.jpeg), scene) < 1.0


def _heif(image: np.ndarray, **colour: object) -> bytes:
    """A HEIC (quality 95) carrying `colour` (an ICC profile, or nclx codes), or a skip without an HEVC encoder."""
    import pillow_heif

    if not pillow_heif.libheif_info().get("encoders", {}).get("x265"):
        pytest.skip("this pillow_heif/libheif build cannot encode HEIC (no x265 encoder)")
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="HEIF", quality=95, **colour)
    return buffer.getvalue()


@pytest.mark.parametrize("declared", ["icc", "nclx"])
def test_a_p3_heic_is_stored_as_srgb(p3_profile: bytes, declared: str) -> None:
    """An iPhone's HEIC carries the P3 profile; other HEIF writers name the P3 primaries in an nclx box instead."""
    scene = _smooth_skin()
    colour: dict[str, object] = (
        {"icc_profile": p3_profile}
        if declared == "icc"
        else {
            "save_nclx_profile": True,
            "color_primaries": 12,
            "transfer_characteristics": 13,
            "matrix_coefficients": 6,
        }
    )
    p3 = gd.as_display_p3(scene)
    reference = load_stored(decode_photo(_heif(scene, **colour), max_pixels=MAX_PIXELS).jpeg)  # HEVC's own loss
    stored = load_stored(decode_photo(_heif(p3, **colour), max_pixels=MAX_PIXELS).jpeg)
    untagged = load_stored(decode_photo(_heif(p3), max_pixels=MAX_PIXELS).jpeg)
    assert _mean_error(stored, scene) < _mean_error(reference, scene) + 0.5
    assert _mean_error(untagged, scene) > _mean_error(stored, scene) + 1.0


def test_an_nclx_box_naming_srgb_changes_nothing() -> None:
    scene = _smooth_skin()
    srgb = {"save_nclx_profile": True, "color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6}
    tagged = decode_photo(_heif(scene, **srgb), max_pixels=MAX_PIXELS)
    plain = decode_photo(_heif(scene), max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(load_stored(tagged.jpeg), load_stored(plain.jpeg))


def test_a_profile_made_on_srgb_primaries_is_srgb_to_littlecms() -> None:
    """The profile writer checked against littleCMS's own sRGB: on sRGB's primaries it converts nothing."""
    made = colour.matrix_profile(gd.SRGB_PRIMARIES, gd.D65, "sRGB, made here")
    image = Image.fromarray(_smooth_skin())
    image.info["icc_profile"] = made
    assert colour.to_srgb(image) is image
    p3 = Image.fromarray(_smooth_skin())
    p3.info["icc_profile"] = colour.matrix_profile(gd.P3_PRIMARIES, gd.D65, "P3, made here")
    assert colour.to_srgb(p3) is not p3


@pytest.mark.parametrize(
    "primaries",
    [
        ((0.3, 0.3), (0.3, 0.3), (0.3, 0.3)),  # one point: no space
        ((0.1, 0.1), (0.2, 0.2), (0.3, 0.3)),  # on one line
        ((1e9, 0.5), (0.3, 0.6), (0.15, 0.06)),  # absurd
    ],
)
def test_an_nclx_box_that_makes_no_colour_space_is_ignored(primaries: tuple) -> None:
    """An upload's colour box is untrusted input: one that describes no colour space leaves the pixels as sRGB."""
    image = Image.fromarray(_smooth_skin())
    names = ("red", "green", "blue")
    image.info["nclx_profile"] = {"transfer_characteristics": 13, "color_primary_white_x": 0.3127} | {
        "color_primary_white_y": 0.329
    }
    for name, (x, y) in zip(names, primaries, strict=True):
        image.info["nclx_profile"] |= {f"color_primary_{name}_x": x, f"color_primary_{name}_y": y}
    assert colour.declared_profile(image) is None
    assert colour.to_srgb(image) is image
