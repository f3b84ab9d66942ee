"""What dermatologists send and get back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.analyses.schemas import FindingPublic

Verdict = Literal["confirmed", "corrected", "unusable_photo"]


class BoxIn(BaseModel):
    label: str = Field(min_length=1, max_length=50)
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in the photo's pixels")


class LabelsIn(BaseModel):
    verdict: Verdict
    grade: int | None = Field(default=None, ge=0, le=3, description="severity 0-3; required unless unusable_photo")
    boxes: list[BoxIn] = Field(default_factory=list, max_length=2000)


class ReviewCasePublic(BaseModel):
    """A case as the review page shows it: the photo and the model's findings as pre-labels."""

    id: str
    reason: str
    priority: float
    status: Literal["queued", "done"]
    reviews_required: int
    reviews_done: int
    photo_url: str
    width: int
    height: int
    findings: list[FindingPublic]
    model_grade: int | None
    lesion_count: int | None
    model_version: str | None
    classes: list[str]
    lease_expires_at: datetime | None


class LabelPublic(BaseModel):
    id: str
    case_id: str
    reviewer_id: str
    verdict: Verdict
    grade: int | None
    boxes: list[BoxIn]
    model_version: str | None
    created_at: datetime
    review_status: Literal["queued", "done"]
    reviews_required: int
    disagreement: bool


class LabelTypePublic(BaseModel):
    """One lesion type reviewers may label; `model_class` is the detector class it trains (None: not trained)."""

    name: str
    display: str
    category: Literal["acne", "non_acne"]
    model_class: str | None


class TaxonomyPublic(BaseModel):
    labels: list[LabelTypePublic]
    model_classes: list[str] = Field(description="the served model's classes")


class ReviewStatsPublic(BaseModel):
    queue: dict[str, int]
    labels: int
    agreement: dict[str, Any] = Field(
        description="pairs: box F1 at IoU 0.5 and grade kappa per reviewer pair; reviewers: reliability vs consensus"
    )


class SuspectPublic(BaseModel):
    """A finished case whose label deserves a second look, and why."""

    case_id: str
    reviewer_id: str
    score: float
    reasons: list[str] = Field(
        description="missed_boxes, extra_boxes, grade_far_from_boxes, near_duplicate, near_duplicate_disagrees"
    )
    missed_boxes: int = Field(description="confident model findings the reviewer dropped")
    extra_boxes: int = Field(description="reviewer boxes where the model saw nothing")
    grade: int | None
    grade_from_boxes: int | None = Field(description="the grade the reviewer's own boxes count to")
    near_duplicates: list[str]


class SuspectsPublic(BaseModel):
    suspects: list[SuspectPublic]
    checked: int = Field(description="finished cases looked at")


class SuspectRoutedPublic(BaseModel):
    case_id: str
    reason: str
    reviews_required: int
    status: Literal["queued", "done"]


class ReviewerPublic(BaseModel):
    """Who the key belongs to, as the review page shows it after checking the key at login."""

    reviewer_id: str
    name: str
    role: str
