"""Lesion count -> clinical severity grade.

Hayashi-style bands on the count: 0-5 mild, 6-20 moderate, 21-50 severe, over 50 very severe.
The upper bounds are stored with each model (its card may calibrate them on `valid`).
"""

from __future__ import annotations

from collections.abc import Sequence

from detector.findings import Severity

GRADE_LABELS: tuple[str, ...] = ("mild", "moderate", "severe", "very_severe")
DEFAULT_BANDS: tuple[int, int, int] = (5, 20, 50)


def grade_from_count(count: int, bands: Sequence[int] = DEFAULT_BANDS) -> Severity:
    """Grade a lesion count: `bands` are the inclusive upper bounds of grades 0, 1 and 2."""
    if count < 0:
        raise ValueError("lesion count cannot be negative")
    if len(bands) != 3 or list(bands) != sorted(bands):
        raise ValueError(f"bands must be three ascending upper bounds, got {list(bands)}")
    grade = sum(count > bound for bound in bands)
    return Severity(grade=grade, label=GRADE_LABELS[grade])


def distance_to_boundary(count: int, bands: Sequence[int] = DEFAULT_BANDS) -> int:
    """Lesions to add or remove before the grade changes: small means the grade is fragile."""
    return min(bound + 1 - count if count <= bound else count - bound for bound in bands)
