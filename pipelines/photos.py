"""Turn uploaded bytes into a trusted RGB array and a sanitised JPEG to store.

Every failure maps to a stable error code. EXIF orientation is applied and all metadata (GPS location
included) is dropped: what we store is a re-encoded JPEG with no EXIF at all.
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class PhotoError(Exception):
    """An upload we refuse; `status` is the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Photo:
    rgb: np.ndarray  # HxWx3 uint8, orientation applied
    jpeg: bytes  # sanitised copy to store (no EXIF)
    source_format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


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
    """Validate and decode an upload. Raises PhotoError with a stable code for anything we refuse."""
    if not data:
        raise PhotoError("empty_body", "The upload is empty.", 400)
    fmt = sniff_format(data)
    if fmt is None:
        raise PhotoError(
            "unsupported_media_type", "The upload is not a JPEG, PNG, HEIC, WebP, GIF, BMP or TIFF image.", 415
        )
    if fmt == "HEIF":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _pil_open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise PhotoError(
                    "image_too_large", f"The photo has {width}x{height} pixels; the limit is {max_pixels:,}.", 413
                )
            img.seek(0)  # animated images: the first frame
            img.load()
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError("image_too_large", "The photo declares too many pixels.", 413) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PhotoError("unreadable_image", "The photo could not be decoded (truncated or corrupt).", 400) from exc
    if min(img.size) < 1:
        raise PhotoError("unreadable_image", "The photo has no pixels.", 400)
    try:
        oriented = ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not lose the photo: keep it unrotated
        oriented = img
    rgb_img = _to_rgb8(oriented)
    buf = io.BytesIO()
    rgb_img.save(buf, format="JPEG", quality=jpeg_quality, optimize=False)  # no exif= argument: metadata dropped
    return Photo(rgb=np.asarray(rgb_img, dtype=np.uint8).copy(), jpeg=buf.getvalue(), source_format=fmt)


def load_stored(jpeg: bytes) -> np.ndarray:
    """Decode a photo we stored ourselves (already sanitised and oriented)."""
    with _pil_open(io.BytesIO(jpeg)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
