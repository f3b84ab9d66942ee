"""A black or white frame around the photo: a screenshot of it in a phone's viewer, or a letterboxed copy.

Such a frame is not part of the scene: judged with it, a black band reads as a shadow (a good photo letterboxed in a
portrait screenshot was refused as `uneven_lighting` 51 times in 60 on valid selection) and a white one as blown-out
light. The gate judges what is inside. A side is framed only when its outermost line is black or white (within
`TOLERANCE` levels of 0 or 255 in every channel, as JPEG leaves a flat band); the photo is what the frame surrounds:
the regions of other pixels big enough not to be a status bar's clock or icons. A deep shadow or a dark room can be as
black as a frame along an edge, so only a wide frame centred on the photo is trimmed (`MAX_CONTENT`, `CENTRED`): on
valid selection that trims none of the graded copies, and a photo without such a frame is judged exactly as before.
"""

from __future__ import annotations

import cv2
import numpy as np

TOLERANCE = 6  # levels per channel from pure black or white (JPEG rings a flat band by a few levels)
EDGE_SHARE = 0.97  # of the outermost line within tolerance: that side is framed
MIN_PART = 0.01  # share of the picture a region inside the frame must cover to be photo, not a clock or an icon
MIN_BAND = 0.02  # share of the side a band must reach to be trimmed (a JPEG block or a hairline is not a frame)
INSET = 0.01  # share of the side cut past a frame's edge (two JPEG blocks of a 1600 px screen)
# the photo inside may keep at most this share of the picture: a screenshot's frame is wide (a square photo on a
# phone's portrait screen keeps 46%, a 3:4 one 62%); trimming narrower black bands too took lighting faults away on
# valid selection, where side light and deep shadows blacken an edge (issue 12's note)
MAX_CONTENT = 0.7
CENTRED = 0.05  # share of the side by which the two bands of one axis may differ (a status bar's height, say)
MIN_CONTENT = 0.1  # share of each side that must remain, else the frame is the photo (a black image: judged whole)


def _frame_mask(rgb: np.ndarray, level: int) -> np.ndarray:
    """Pixels within TOLERANCE of black (level 0) or white (255) in every channel."""
    if level == 0:
        return rgb.max(axis=-1) <= TOLERANCE
    return rgb.min(axis=-1) >= 255 - TOLERANCE


def _edge_level(line: np.ndarray) -> int | None:
    """0 or 255 when this outermost line (N x 3) is a black or white frame's, else None."""
    for level in (0, 255):
        if _frame_mask(line, level).mean() >= EDGE_SHARE:
            return level
    return None


def _centred(before: int, after: int, side: int) -> bool:
    """Bands on both ends of an axis of nearly one width, or none: a viewer or a chat app centres the photo."""
    return abs(before - after) <= CENTRED * side


def content_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the photo inside a black or white frame, or None when there is no such frame."""
    height, width = rgb.shape[:2]
    if min(height, width) < 16:
        return None
    edges = {
        "top": _edge_level(rgb[0]),
        "bottom": _edge_level(rgb[-1]),
        "left": _edge_level(rgb[:, 0]),
        "right": _edge_level(rgb[:, -1]),
    }
    levels = {level for level in edges.values() if level is not None}
    if len(levels) != 1:
        return None  # no framed side, or a black side and a white one: the picture's own edges, not one frame
    inside = (~_frame_mask(rgb, levels.pop())).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=8)
    # the photo: every region of it big enough not to be a status bar's clock or icon
    parts = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= MIN_PART * height * width]
    if not parts:
        return None
    left = min(stats[i, cv2.CC_STAT_LEFT] for i in parts)
    top = min(stats[i, cv2.CC_STAT_TOP] for i in parts)
    right = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in parts)
    bottom = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in parts)
    # only framed sides move, and only by a band of MIN_BAND or more (a hairline or a JPEG block is no frame); past the
    # frame, by INSET more: JPEG rings the frame's edge into the photo's first blocks, a hard line that would read
    # as detail in one direction (a smear to the motion measures)
    inset_x, inset_y = max(2, round(INSET * width)), max(2, round(INSET * height))
    x0 = int(left) + inset_x if edges["left"] is not None and left >= MIN_BAND * width else 0
    y0 = int(top) + inset_y if edges["top"] is not None and top >= MIN_BAND * height else 0
    x1 = int(right) - inset_x if edges["right"] is not None and width - right >= MIN_BAND * width else width
    y1 = int(bottom) - inset_y if edges["bottom"] is not None and height - bottom >= MIN_BAND * height else height
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    if not (_centred(x0, width - x1, width) and _centred(y0, height - y1, height)):
        return None  # one side darker than the rest: a shadow or a dark room, not a viewer's frame
    if x1 - x0 < MIN_CONTENT * width or y1 - y0 < MIN_CONTENT * height:
        return None
    if (x1 - x0) * (y1 - y0) > MAX_CONTENT * width * height:
        return None  # a narrow band: a deep shadow or a dark room along an edge can be as black as a frame
    return x0, y0, x1, y1
