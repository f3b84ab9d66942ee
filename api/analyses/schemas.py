"""What the mobile app sends and gets back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class FindingPublic(BaseModel):
    label: str
    confidence: float
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in the photo's pixels")


class SeverityPublic(BaseModel):
    grade: int = Field(ge=0, le=3)
    label: str
    probabilities: list[float] | None = Field(
        default=None, min_length=4, max_length=4, description="grades 0..3, sum 1 (models with a grader)"
    )
    count_interval: list[int] | None = Field(
        default=None, min_length=2, max_length=2, description="low, high lesion count (models with a grader)"
    )
    score: float | None = Field(default=None, description="expected grade, 0..3 (models with a grader)")


class QualityPublic(BaseModel):
    accepted: bool
    retake_codes: list[str]
    hints: list[str]
    measures: dict[str, float]
    margin: float | None = None


class ReviewPublic(BaseModel):
    queued: bool
    reason: str | None


class AnalysisPublic(BaseModel):
    id: str
    status: Literal["pending", "done", "rejected", "failed"]
    created_at: datetime
    width: int
    height: int
    quality: QualityPublic | None
    findings: list[FindingPublic]
    lesion_count: int | None
    severity: SeverityPublic | None
    uncertainty: float | None
    model_version: str | None
    review: ReviewPublic


class AnalysisAcceptedPublic(BaseModel):
    id: str
    status: Literal["pending"]
    location: str
