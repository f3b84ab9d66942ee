"""Draw findings on a photo, for people who would rather look than read."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detector.findings import Finding

_PALETTE = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (0, 220, 120), (200, 80, 255)]


def draw_findings(rgb: np.ndarray, findings: Sequence[Finding], labels: Sequence[str] = ()) -> np.ndarray:
    """A copy of the photo with one box per finding; colour by label, line width scaled to the photo."""
    canvas = np.ascontiguousarray(rgb.copy())
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    order = list(labels) or sorted({f.label for f in findings})
    for finding in findings:
        colour = _PALETTE[order.index(finding.label) % len(_PALETTE)] if finding.label in order else _PALETTE[0]
        x1, y1, x2, y2 = (round(v) for v in finding.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, lineType=cv2.LINE_AA)
        text = f"{finding.confidence:.2f}"
        cv2.putText(canvas, text, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * thickness, colour,
                    max(1, thickness // 2), cv2.LINE_AA)
    return canvas


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode PNG")
    return buf.tobytes()
