"""decode_photo on hostile and unusual uploads: the bad-input corpus, orientation, metadata, bombs, random bytes.

The corpus builders here are shared with the API-level test (tests/integration/test_bad_input.py).
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from api.errors import status_for
from pipelines.cases.photos import PhotoError, decode_photo, sniff_format
from tests.conftest import encode, skin_photo

MAX_PIXELS = 60_000_000


# ---- corpus builders -------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG that declares width x height RGB pixels but is a few hundred bytes: one compressed zero row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def truncated_jpeg(seed: int = 0) -> bytes:
    data = encode(skin_photo(400, 400, seed=seed))
    return data[: len(data) // 3]


def cmyk_jpeg() -> bytes:
    return encode_image(Image.fromarray(skin_photo(400, 400, seed=3)).convert("CMYK"), "JPEG")


def png16_gray() -> bytes:
    gray = skin_photo(400, 400, seed=4).mean(axis=2).astype(np.uint16) * 257  # full 16-bit range
    img = Image.fromarray(gray)
    assert img.mode.startswith("I;16")
    return encode_image(img, "PNG")


def grayscale_jpeg() -> bytes:
    return encode_image(Image.fromarray(skin_photo(400, 400, seed=5)).convert("L"), "JPEG")


def animated_gif() -> bytes:
    frames = [Image.fromarray(skin_photo(400, 400, seed=s)).convert("P") for s in (6, 7, 8)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def marked_photo(width: int = 480, height: int = 400) -> np.ndarray:
    """Skin with a pure blue square in the top-left corner, to see where a rotation puts it."""
    rgb = skin_photo(width, height, seed=9)
    rgb[:40, :40] = (0, 0, 255)
    return rgb


def exif_jpeg(orientation: int = 6, gps: bool = True) -> bytes:
    """A camera-style JPEG: sensor-oriented pixels, EXIF orientation, and a GPS position."""
    img = Image.fromarray(marked_photo())
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    if gps:
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 7.5)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 41.0)
    return encode_image(img, "JPEG", exif=exif)


def heic_photo() -> bytes:
    """A HEIC made with pillow_heif, or a skip if this libheif build has no HEVC encoder."""
    import pillow_heif

    if not pillow_heif.libheif_info().get("encoders", {}).get("x265"):
        pytest.skip("this pillow_heif/libheif build cannot encode HEIC (no x265 encoder); decoding is untested here")
    heif = pillow_heif.from_bytes(mode="RGB", size=(400, 400), data=skin_photo(400, 400, seed=10).tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    return buf.getvalue()


def encode_image(img: Image.Image, fmt: str, **save_args: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_args)
    return buf.getvalue()


# ---- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty_body", 400),
        (b"hello, I am a text file called photo.jpg\n" * 20, "unsupported_media_type", 415),
        (b"%PDF-1.7\n" + b"0" * 100, "unsupported_media_type", 415),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "unreadable_image", 400),
    ],
    ids=["empty", "text", "pdf", "jpeg-header-only"],
)
def test_refused_uploads_have_stable_codes(data: bytes, code: str, status: int) -> None:
    with pytest.raises(PhotoError) as err:
        decode_photo(data, max_pixels=MAX_PIXELS)
    assert (err.value.code, status_for(err.value)) == (code, status)


def test_truncated_jpeg_is_unreadable_not_a_crash() -> None:
    with pytest.raises(PhotoError) as err:
        decode_photo(truncated_jpeg(), max_pixels=MAX_PIXELS)
    assert (err.value.code, status_for(err.value)) == ("unreadable_image", 400)


@pytest.mark.parametrize("size", [(30_000, 30_000), (8_000, 8_000)], ids=["beyond-pillow-limit", "beyond-our-limit"])
def test_decompression_bomb_is_refused_without_decoding(size: tuple[int, int]) -> None:
    bomb = png_bomb(*size)
    assert len(bomb) < 2_000  # tiny on disk, gigabytes once decoded
    rss_before = _rss_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(PhotoError) as err:
            decode_photo(bomb, max_pixels=MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (err.value.code, status_for(err.value)) == ("image_too_large", 413)
    assert peak < 5 * 1024 * 1024, f"python allocations peaked at {peak:,} bytes"
    assert _rss_bytes() - rss_before < 50 * 1024 * 1024  # a decoded 30000^2 RGB frame would be 2.7 GB


def _rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


# ---- accepted variants -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fmt"),
    [(cmyk_jpeg, "JPEG"), (png16_gray, "PNG"), (grayscale_jpeg, "JPEG"), (animated_gif, "GIF")],
    ids=["cmyk", "png-16bit", "grayscale", "animated-gif"],
)
def test_unusual_modes_become_8bit_rgb(make, fmt: str) -> None:  # type: ignore[no-untyped-def]
    photo = decode_photo(make(), max_pixels=MAX_PIXELS)
    assert photo.source_format == fmt
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (400, 400, 3)
    assert 60 < photo.rgb.mean() < 240  # not black, not blown out: the modes were converted, not zeroed
    with Image.open(io.BytesIO(photo.jpeg)) as stored:
        assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (400, 400))


def test_sixteen_bit_keeps_its_tones() -> None:
    """16-bit values are scaled down, not clipped: the 8-bit result tracks the source luminance."""
    source = skin_photo(400, 400, seed=4).mean(axis=2)
    photo = decode_photo(png16_gray(), max_pixels=MAX_PIXELS)
    assert abs(float(photo.rgb[..., 0].mean()) - float(source.mean())) < 2.0


def test_exif_orientation_is_applied_and_location_dropped() -> None:
    data = exif_jpeg(orientation=6)
    with Image.open(io.BytesIO(data)) as original:  # the fixture really carries what we claim
        assert original.size == (480, 400)
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    photo = decode_photo(data, max_pixels=MAX_PIXELS)
    assert (photo.width, photo.height) == (400, 480)  # orientation 6: rotate 90 degrees clockwise
    top_right = photo.rgb[:30, -30:].reshape(-1, 3).mean(axis=0)
    assert top_right[2] > 200 and top_right[0] < 60  # the blue corner moved from top-left to top-right
    with Image.open(io.BytesIO(photo.jpeg)) as stored:
        exif = stored.getexif()
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert ExifTags.Base.Orientation not in exif  # pixels are upright; nothing left to rotate twice
        assert b"TestCam" not in photo.jpeg and b"GPS" not in photo.jpeg


def test_heic_is_accepted() -> None:
    data = heic_photo()
    assert sniff_format(data) == "HEIF"
    photo = decode_photo(data, max_pixels=MAX_PIXELS)
    assert photo.source_format == "HEIF" and photo.rgb.shape == (400, 400, 3)
    assert abs(float(photo.rgb.mean()) - float(skin_photo(400, 400, seed=10).mean())) < 10


# ---- properties ------------------------------------------------------------------------------------------------

_HEADERS = [
    b"",
    b"\xff\xd8\xff",
    b"\x00\x00\x00\x18ftypheic",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"RIFF\x00\x00\x00\x00WEBP",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.sampled_from(_HEADERS), tail=st.binary(max_size=512))
def test_random_bytes_only_ever_raise_photo_error(header: bytes, tail: bytes) -> None:
    """Garbage behind a real magic number reaches the decoders; they may refuse, never crash differently."""
    try:
        photo = decode_photo(header + tail, max_pixels=1_000_000)
    except PhotoError as exc:
        assert status_for(exc) in {400, 413, 415} and exc.code
    else:
        assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and photo.jpeg[:3] == b"\xff\xd8\xff"


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_corrupted_real_photos_only_ever_raise_photo_error(data: st.DataObject) -> None:
    """Flip bytes and cut real JPEG/PNG files at random points."""
    fmt = data.draw(st.sampled_from(["JPEG", "PNG"]))
    blob = bytearray(encode(skin_photo(48, 40, seed=1), fmt))
    for _ in range(data.draw(st.integers(0, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(blob)))
    try:
        decode_photo(bytes(blob[:cut]), max_pixels=1_000_000)
    except PhotoError as exc:
        assert status_for(exc) in {400, 413, 415}
