"""What ML engineers send and get back about model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.public import PublicModel, UtcDatetime
from pipelines.mlops.registry import Alias


class VersionPublic(BaseModel):
    version: str
    run_id: str | None
    aliases: list[str]
    tags: dict[str, str]
    created_at: int


class AliasEventPublic(PublicModel):
    alias: str
    version: str
    previous_version: str | None
    actor: str
    reason: str
    figures: dict[str, Any]
    created_at: UtcDatetime


class ModelsPublic(BaseModel):
    versions: list[VersionPublic]
    aliases: dict[str, str | None]
    history: list[AliasEventPublic]
    serving: str | None = Field(None, description="model_version this API process serves now")


class PromoteIn(BaseModel):
    alias: Alias
    reason: str = Field(min_length=1, max_length=2000)
    force: bool = False


class RollbackIn(BaseModel):
    alias: Alias = "release"
    reason: str = Field(min_length=1, max_length=2000)


class TrainingRunIn(BaseModel):
    epochs: int = Field(30, ge=1, le=1000)
    imgsz: int = Field(640, ge=64, le=2048, multiple_of=32)
    batch: int = Field(8, ge=1, le=256)
    start_from: Literal["release", "scratch"] = Field("release", alias="from")
    dataset: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
        description="id of a registered dataset snapshot to train on besides the reviewed labels (GET /v1/datasets);"
        " never a path",
    )

    # unknown fields (an old client's `base_data` path) are refused, not silently ignored
    model_config = {"populate_by_name": True, "extra": "forbid"}


class TrainingRunPublic(PublicModel):
    id: str
    status: str
    progress: float
    params: dict[str, Any]
    metrics: dict[str, Any]
    mlflow_run_id: str | None
    model_version: str | None
    dataset_digest: str | None
    error: str | None
    created_at: UtcDatetime


class DatasetPublic(BaseModel):
    id: str
    digest: str
    source: str
    cases: int = Field(description="reviewed cases whose photos it holds")
    created_at: datetime
    revoked: bool
    revoked_reason: str | None
