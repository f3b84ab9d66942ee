"""Turn uploaded bytes into a trusted RGB array and a sanitised JPEG to store.

Every failure maps to a stable error code. EXIF orientation is applied and all metadata (GPS location
included) is dropped: what we store is a JPEG with no EXIF at all (the upload's own compressed data when it
needs no rotation, else a re-encoded copy).

Colour (`pipelines/cases/colour.py`): an upright JPEG is stored with its ICC profile (a browser shows it right), a
re-encoded upload is converted to sRGB, and every reader of stored pixels here (`decode_stored`, `load_stored`,
`srgb_jpeg`) hands out sRGB, the space the detector and the gate learned.
"""

from __future__ import annotations

import io
import math
import struct
import sys
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.cases.colour import to_srgb
from pipelines.errors import Refused

# what Pillow raises on truncated or corrupt image data
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


class PhotoError(Refused):
    """An upload we refuse (empty, not an image, too many pixels, unreadable)."""


@dataclass(frozen=True)
class Photo:
    """An accepted upload: the sanitised JPEG we store (and analyse) and its size in pixels."""

    jpeg: bytes  # oriented, no EXIF/XMP/IPTC/comments, no appended images
    width: int
    height: int
    source_format: str

    @property
    def rgb(self) -> np.ndarray:
        """The stored pixels at full resolution (costly on 12 MP: analysis uses `decode_stored`)."""
        return load_stored(self.jpeg)


@dataclass(frozen=True)
class Pixels:
    """Decoded pixels of a stored photo, possibly reduced; `scale` is photo pixels per array pixel (x, y)."""

    rgb: np.ndarray
    scale: tuple[float, float]


_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}


def sniff_format(data: bytes) -> str | None:
    """Recognise an image by its magic bytes, never by file name or declared content type."""
    for magic, offset, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


@cache
def _register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def _pil_open(fp: io.BytesIO) -> Image.Image:
    """Pillow's own opener. Importing Ultralytics (in a worker that also trains) swaps `Image.open` for a
    wrapper that, on an unreadable file, tries to pip-install a HEIF plugin: never on patients' uploads."""
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", Image.open)
    return opener(fp)


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Any mode (CMYK, 16-bit, palette, alpha, grayscale) -> 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def decode_photo(data: bytes, *, max_pixels: int, jpeg_quality: int = 92) -> Photo:
    """Validate an upload and make the copy we store. Raises PhotoError with a stable code for anything we refuse.

    A JPEG that needs no rotation keeps its compressed data: its metadata segments are cut out losslessly
    (no decode and re-encode of 12 MP, and not a pixel changes). Anything else is decoded, oriented and
    re-encoded as a JPEG without metadata.
    """
    if not data:
        raise PhotoError("empty_body", "The upload is empty.")
    fmt = sniff_format(data)
    if fmt is None:
        raise PhotoError("unsupported_media_type", "The upload is not a JPEG, PNG, HEIC, WebP, GIF, BMP or TIFF image.")
    if fmt == "HEIF":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _pil_open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise PhotoError(
                    "image_too_large", f"The photo has {width}x{height} pixels; the limit is {max_pixels:,}."
                )
            if fmt == "JPEG" and img.mode == "RGB" and _orientation(img) == 1:
                stripped = strip_jpeg_metadata(data)
                _check_decodes(stripped)
                return Photo(jpeg=stripped, width=width, height=height, source_format=fmt)
            img.seek(0)  # animated images: the first frame
            img.load()
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError("image_too_large", "The photo declares too many pixels.") from exc
    except _DECODE_ERRORS as exc:
        raise PhotoError("unreadable_image", "The photo could not be decoded (truncated or corrupt).") from exc
    if min(img.size) < 1:
        raise PhotoError("unreadable_image", "The photo has no pixels.")
    try:
        oriented = ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not lose the photo: keep it unrotated
        oriented = img
    rgb_img = _to_rgb8(to_srgb(oriented))
    buf = io.BytesIO()
    rgb_img.save(buf, format="JPEG", quality=jpeg_quality, optimize=False)  # no exif= argument: metadata dropped
    return Photo(jpeg=buf.getvalue(), width=rgb_img.width, height=rgb_img.height, source_format=fmt)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # unreadable EXIF: treat as upright, the strip below drops it anyway
        return 1


def _check_decodes(jpeg: bytes) -> None:
    """Decode the whole entropy-coded stream at 1/8 scale (cheap): truncation and corruption surface here."""
    with _pil_open(io.BytesIO(jpeg)) as img:
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()


# Segments a stored photo keeps: JFIF/Adobe colour info, the ICC profile, and what decoding needs.
_KEEP_APP = {0xE0: (b"JFIF\x00", b"JFXX\x00"), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The same JPEG without EXIF (GPS included), XMP, IPTC, comments, MPF and anything after the image.

    Lossless: header segments are copied or dropped whole and the compressed scan data is untouched.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError("JPEG marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            out += data[pos : pos + 2]
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        if len(segment) < 2 + length or length < 2:
            raise ValueError("truncated JPEG segment")
        if marker == 0xDA:  # start of scan: everything up to the end-of-image marker is image data
            end = _end_of_image(data, pos + 2 + length)
            out += data[pos:end]
            return bytes(out)
        keep = marker not in range(0xE0, 0xF0) and marker != 0xFE
        if marker in _KEEP_APP:
            keep = any(segment[4:].startswith(tag) for tag in _KEEP_APP[marker])
        if keep:
            out += segment
        pos += 2 + length
    raise ValueError("JPEG without image data")


def _end_of_image(data: bytes, start: int) -> int:
    """Index just past the first EOI after `start` (0xFF inside scan data is always followed by 0x00 or RSTn)."""
    found = data.find(b"\xff\xd9", start)
    if found < 0:
        raise ValueError("JPEG without end of image")
    return found + 2


def srgb_jpeg(jpeg: bytes) -> bytes:
    """A stored photo as sRGB JPEG bytes for readers that ignore ICC profiles (OpenCV in training, annotation tools):
    the stored bytes themselves when they need no conversion, else a converted copy (quality 95, no profile)."""
    with _pil_open(io.BytesIO(jpeg)) as img:
        converted = to_srgb(img)
        if converted is img:
            return jpeg
        buf = io.BytesIO()
        converted.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def load_stored(jpeg: bytes) -> np.ndarray:
    """Decode a photo we stored ourselves (already sanitised and oriented), at full resolution, in sRGB."""
    with _pil_open(io.BytesIO(jpeg)) as img:
        return np.asarray(to_srgb(img).convert("RGB"), dtype=np.uint8).copy()


def load_stored_or_none(jpeg: bytes) -> np.ndarray | None:
    """`load_stored`, or None when the stored bytes no longer decode (a damaged store): for background work that
    skips such a case instead of failing."""
    try:
        return load_stored(jpeg)
    except _DECODE_ERRORS:
        return None


def decode_stored(jpeg: bytes, *, min_long_side: int) -> Pixels:
    """The stored photo decoded at the smallest JPEG scale (1/2, 1/4, 1/8) whose long side is >= `min_long_side`.

    JPEG decodes at reduced size for almost nothing (the DCT is scaled, not the pixels), so a 12 MP photo
    costs little more than a 640 px one; a profile other than sRGB is applied to the reduced pixels. Sync and
    async analyses both call this on the same stored bytes, so they see the same pixels.
    """
    with _pil_open(io.BytesIO(jpeg)) as img:
        width, height = img.size
        long_side = max(width, height)
        if long_side > min_long_side:
            shrink = long_side / min_long_side
            img.draft("RGB", (math.ceil(width / shrink), math.ceil(height / shrink)))
        rgb = np.asarray(to_srgb(img).convert("RGB"), dtype=np.uint8)
    return Pixels(rgb=rgb, scale=(width / rgb.shape[1], height / rgb.shape[0]))
