"""Colour management: a photo's pixels in sRGB, the space the detector and the quality gate learned.

Phones record wide-gamut colour and say so: an ICC profile in the JPEG, PNG or HEIC (an iPhone's Display P3), or, in
HEIF/AVIF, an `nclx` box naming the primaries and the transfer curve. Values in a wider space read as sRGB come out
duller, the redness of a lesion included. `to_srgb` applies what the photo declares; photos that declare sRGB, or
nothing, are left as they are, bit for bit.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageCms

log = logging.getLogger(__name__)
SRGB_EQUIVALENT_LEVELS = 1  # a profile that moves no probe colour further than this is sRGB in all but name

# ITU-T H.273 transfer codes in an nclx box read with sRGB's curve: 13 is sRGB's; 1, 6, 14 and 15 are BT.709's, which
# differs from it only in the darkest tones (the primaries are what moves colours far)
NCLX_SRGB_CURVES = frozenset({1, 6, 13, 14, 15})
D50_XYZ = (0.9642, 1.0, 0.8249)  # the ICC connection space's white
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)  # ICC parametric curve type 3: g, a, b, c, d

Chromaticity = tuple[float, float]


def _xyz(xy: Chromaticity) -> np.ndarray:
    return np.array([xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]])


def rgb_to_xyz(primaries: Sequence[Chromaticity], white: Chromaticity) -> np.ndarray:
    """The 3x3 matrix from linear RGB on these primaries to CIE XYZ (white at Y = 1)."""
    columns = np.stack([_xyz(p) for p in primaries], axis=1)
    return columns * np.linalg.solve(columns, _xyz(white))


def _s15(values: Sequence[float]) -> bytes:
    return b"".join(round(float(v) * 65536).to_bytes(4, "big", signed=True) for v in values)


def _xyz_tag(xyz: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(xyz)


def matrix_profile(primaries: Sequence[Chromaticity], white: Chromaticity, name: str) -> bytes:
    """An ICC v2 display profile for RGB on these primaries and white with sRGB's tone curve (Display P3 is one):
    the primaries adapted to the connection space's D50 by Bradford, as the ICC asks."""
    cone = BRADFORD @ _xyz(white), BRADFORD @ np.array(D50_XYZ)
    to_pcs = np.linalg.solve(BRADFORD, np.diag(cone[1] / cone[0]) @ BRADFORD) @ rgb_to_xyz(primaries, white)
    curve = b"para\0\0\0\0" + (3).to_bytes(2, "big") + b"\0\0" + _s15(SRGB_CURVE)
    text = name.encode("ascii")
    desc = b"desc\0\0\0\0" + (len(text) + 1).to_bytes(4, "big") + text + b"\0" + bytes(8) + bytes(3) + bytes(67)
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0CC0\0"),
        (b"wtpt", _xyz_tag(D50_XYZ)),
        (b"rXYZ", _xyz_tag(to_pcs[:, 0])),
        (b"gXYZ", _xyz_tag(to_pcs[:, 1])),
        (b"bXYZ", _xyz_tag(to_pcs[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + (offset + len(data)).to_bytes(4, "big") + len(body).to_bytes(4, "big")
        data += body
    header = (
        (offset + len(data)).to_bytes(4, "big")
        + bytes(4)
        + bytes([2, 0x10, 0, 0])  # version 2.1
        + b"mntrRGB XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(28)
        + _s15(D50_XYZ)
        + bytes(48)
    )
    return header + len(tags).to_bytes(4, "big") + table + data


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _probe_colours() -> Image.Image:
    """Every combination of seven levels per channel: where a profile that is not sRGB shows itself."""
    levels = np.linspace(0, 255, 7).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    return Image.fromarray(np.ascontiguousarray(grid), mode="RGB")


@lru_cache(maxsize=16)
def _transform_to_srgb(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from `profile` (pixels in `mode`) to sRGB; None when there is nothing to do: an RGB profile that
    is sRGB in all but name (an sRGB profile, whichever maker wrote it), or a profile littleCMS cannot read (the pixels
    are then taken as sRGB, as a browser without the profile would). Cached: phones send a handful of profiles."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        transform = ImageCms.buildTransform(
            source, _srgb_profile(), mode, "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        log.warning("ignored an ICC profile that could not be read (%d bytes)", len(profile))
        return None
    if mode == "RGB":
        probe = _probe_colours()
        moved = np.abs(np.asarray(ImageCms.applyTransform(probe, transform), np.int16) - np.asarray(probe, np.int16))
        if int(moved.max()) <= SRGB_EQUIVALENT_LEVELS:
            return None
    return transform


@lru_cache(maxsize=8)
def _nclx_profile(primaries: tuple[Chromaticity, ...], white: Chromaticity) -> bytes:
    return matrix_profile(primaries, white, "nclx primaries, sRGB curve")


def declared_profile(img: Image.Image) -> bytes | None:
    """The ICC profile the photo declares: its own, or one made from its nclx box when that names primaries (any:
    sRGB's make a profile that changes nothing) on sRGB's curve. HDR curves (PQ, HLG) are not handled: None."""
    if profile := img.info.get("icc_profile"):
        return bytes(profile)
    nclx = img.info.get("nclx_profile")
    if not isinstance(nclx, dict) or nclx.get("transfer_characteristics") not in NCLX_SRGB_CURVES:
        return None
    try:
        primaries = tuple(
            (float(nclx[f"color_primary_{c}_x"]), float(nclx[f"color_primary_{c}_y"])) for c in ("red", "green", "blue")
        )
        white = (float(nclx["color_primary_white_x"]), float(nclx["color_primary_white_y"]))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(x > 0.0 and y > 0.0 and x + y <= 1.0 + 1e-6 for x, y in (*primaries, white)):
        return None  # off the chromaticity diagram (its edge, x + y = 1, holds P3's and BT.2020's reds)
    try:  # rounded: the box stores float32, so one phone's boxes map to one cached profile
        return _nclx_profile(tuple(_rounded(p) for p in primaries), _rounded(white))
    except (np.linalg.LinAlgError, ValueError, OverflowError):  # primaries on one line, or absurd: no space at all
        log.warning("ignored an nclx colour box whose primaries make no colour space")
        return None


def _rounded(xy: Chromaticity) -> Chromaticity:
    return round(xy[0], 4), round(xy[1], 4)


def to_srgb(img: Image.Image) -> Image.Image:
    """`img` with its declared colour space applied, in sRGB; as it is when it declares none, or one that changes
    nothing.

    RGB and CMYK pixels are converted, RGBA's colour too (a phone's screenshot is a P3-tagged PNG); other modes (grey,
    palette, 16-bit) are taken as sRGB."""
    profile = declared_profile(img)
    if profile and img.mode == "RGBA":
        rgb = img.convert("RGB")
        rgb.info["icc_profile"] = profile
        converted = to_srgb(rgb)
        converted.putalpha(img.getchannel("A"))
        return converted
    if not profile or img.mode not in ("RGB", "CMYK"):
        return img
    transform = _transform_to_srgb(profile, img.mode)
    if transform is None:
        return img
    return ImageCms.applyTransform(img, transform)
