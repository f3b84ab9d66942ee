"""ORM tables. API schemas live in the api package, never here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; `prefix` lets people tell keys apart in lists."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the person holding the key: a person rotates keys, counts as one reviewer (None: the key is its own person)
    person_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)


class Case(Base):
    """One uploaded photo and what the product concluded about it."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_case_idempotency"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | done | rejected | failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # sha256 of (mode, photo bytes) of the request that first used the key: a different request is refused
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    photo_key: Mapped[str | None] = mapped_column(String(200), nullable=True)  # rejected photos are not kept
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    findings: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    lesion_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the grader's detail when the model has one: {"probabilities": [4], "count_interval": [lo, hi], "score": x}
    severity_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    uncertainty: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    review_queued: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewItem(Base):
    """A case waiting for (or under) dermatologist review; one row per case."""

    __tablename__ = "review_items"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    priority: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")  # queued | done
    reviews_required: Mapped[int] = mapped_column(Integer, default=1)
    reviews_done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewLease(Base):
    """A claim by one reviewer on one case, until `expires_at`."""

    __tablename__ = "review_leases"
    __table_args__ = (UniqueConstraint("case_id", "reviewer_id", name="uq_lease_case_reviewer"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[str] = mapped_column(String(32), index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    released: Mapped[bool] = mapped_column(Boolean, default=False)


class Label(Base):
    """A dermatologist's reviewed labels for a case: training data with its provenance."""

    __tablename__ = "labels"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[str] = mapped_column(String(32), index=True)
    verdict: Mapped[str] = mapped_column(String(20))
    grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    boxes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class TrainingRun(Base):
    """A retraining job and its progress, mirrored from the worker and MLflow."""

    __tablename__ = "training_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | succeeded | failed
    requested_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    dataset_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AliasEvent(Base):
    """One move of a model alias: MLflow keeps no history of these, so we do."""

    __tablename__ = "alias_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[str] = mapped_column(String(32))
    previous_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """Who did what to which case or model (reviewer and ML-engineer actions, deletions)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeletedCase(Base):
    """Tombstone of a deleted case: no photo or result, only the id, so snapshots can exclude it."""

    __tablename__ = "deleted_cases"
    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabelType(Base):
    """One entry of the product's lesion taxonomy: what reviewers may label, independent of the model's classes.

    `model_class` names the detector class a box of this type trains (None: not trained, e.g. scars).
    """

    __tablename__ = "label_types"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    display: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20))  # acne | non_acne
    model_class: Mapped[str | None] = mapped_column(String(50), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PhotoHash(Base):
    """A case photo's 64-bit perceptual hash (hex), computed once on demand to find near-duplicate photos."""

    __tablename__ = "photo_hashes"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    phash: Mapped[str] = mapped_column(String(16), index=True)


class DatasetSnapshot(Base):
    """A training dataset snapshot the system built or imported: training runs name it by id, never by path.

    `case_ids` lists the cases whose photos it holds, so an erasure finds every snapshot to revoke and remove."""

    __tablename__ = "dataset_snapshots"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # the folder name, <name>-<digest12>
    digest: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(Text)
    case_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
