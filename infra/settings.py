"""The one settings object. Embedded defaults run with no external server; env vars switch to production.

Every variable is prefixed `SKINTROUBLE_`; the three production switches also accept their usual names
(`DATABASE_URL`, `REDIS_URL`, `MLFLOW_TRACKING_URI`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
Role = Literal["app", "dermatologist", "ml-engineer"]
ROLES: tuple[str, ...] = get_args(Role)


class Settings(BaseSettings):
    """Configuration. Paths default to `var/` under the current directory (the repo root)."""

    model_config = SettingsConfigDict(env_prefix="SKINTROUBLE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")

    # production switches (unset = embedded default)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SKINTROUBLE_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("SKINTROUBLE_REDIS_URL", "REDIS_URL"))
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("SKINTROUBLE_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI")
    )
    # photo storage: a local folder by default, any S3-compatible store in production
    storage_url: str | None = None  # e.g. s3://bucket/prefix ; unset = var/photos
    s3_endpoint_url: str | None = None

    # API
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 60_000_000
    cors_origins: list[str] = []
    rate_limit_per_minute: int = 120
    public_base_url: str = "http://127.0.0.1:8000"
    # /metrics: the bearer token scrapers send (required in production; unset elsewhere = open to local tools)
    metrics_token: str | None = None
    # aggregates over fewer cases than this are held back from /metrics (small groups identify patients)
    metrics_min_cases: int = 10
    # requests without a valid key, per client address and minute (0 = off)
    rate_limit_unauthenticated_per_minute: int = 30

    # detector
    model_dir: Path = REPO_ROOT / "detector" / "weights"
    model_name: str = "skintrouble-detector"
    # Concurrent analyses per process (decode + gate + detect), default: one per core. Each slot runs the
    # network on `detector_threads` threads, default cores // slots, so slots never fight over cores.
    inference_slots: int | None = Field(default=None, ge=1)
    detector_threads: int | None = None
    busy_wait_seconds: float = 5.0  # a sync upload waits this long for a slot, then gets 503 `busy`
    intake_wait_seconds: float = 30.0  # an async upload waits this long to be sanitised (then 503 `busy`)
    model_refresh_seconds: float = 30.0
    follow_registry: bool = True  # serve the registry's `release` alias when there is one
    model_cache: Path | None = None  # where ONNX exports are cached; default var/cache/models

    # quality gate: threshold overrides by name, e.g. SKINTROUBLE_QUALITY_THRESHOLDS='{"min_sharpness": 40}'
    quality_thresholds: dict[str, float] = {}
    # refuse (not_skin_photo) a photo whose detector embedding is beyond its model's limit; needs the model's
    # `embedding_ood` statistics (every model carries them). Off by default: measured on skin close-ups cut from
    # valid photos and enlarged, the shipped limit refuses 15% of those the gate passed, while the gate alone
    # already refuses 98.4% of held-back non-skin images (MODEL_CARD.md). Turn on where uploads are framed like
    # ACNE04's half-face photos.
    embedding_ood_check: bool = False

    # review routing
    review_conf_low: float = 0.25
    review_conf_high: float = 0.45
    review_uncertain_share: float = 0.3
    review_uncertainty_threshold: float = 0.35
    review_quality_margin: float = 0.1
    review_grade_boundary: int = 2
    # models with a grader: queue (uncertain_grade) when the top grade probability is lower; replaces
    # near_grade_boundary for them. 0.68 routes as many selection-part photos as near_grade_boundary does with the
    # shipped grader (chosen on selection only; MODEL_CARD.md has the report-part routing table).
    review_grade_probability_min: float = 0.68
    review_audit_rate: float = 0.05
    review_lease_seconds: int = 900
    review_double_rate: float = 0.2

    # label quality (the data engine): reviewer flags, suspects, the missed-lesion sweep
    review_min_agreement: float = 0.6  # a reviewer below this agreement (with >= review_flag_min_cases) is flagged
    review_flag_min_cases: int = 3
    suspect_min_confidence: float = 0.5  # a model finding this sure that the reviewer dropped counts as "missed"
    suspect_duplicate_distance: int = 6  # perceptual-hash Hamming distance (of 64 bits) for near-duplicate photos
    suspect_auto_route_min_score: float = 3.0  # the beat task sends suspects scoring this much to another reviewer
    suspect_auto_route_limit: int = 10  # at most this many per run (hourly)
    missed_lesion_max_count: int = 2  # "the model found few lesions": at most this many
    missed_lesion_min_mass: float = 3.0  # objectness mass below the operating threshold that says "look again"
    missed_lesion_min_uncertainty: float = 0.2  # or flip/scale disagreement at least this
    missed_lesion_sample_rate: float = 0.5  # share of the qualifying photos sent to review

    # retraining
    retrain_min_new_labels: int = 50
    retrain_check_seconds: float = 3600.0
    promotion_margin: float = 0.01
    promotion_max_grade_drop: float = 0.0
    benchmark_dir: Path | None = None
    # labelled YOLO folder whose `valid` selection part refits each retrained model's grader (None: bands only)
    grader_data_dir: Path | None = None
    train_epochs: int = 30
    train_imgsz: int = 640
    train_device: str = "cpu"

    # celery
    celery_always_eager: bool = False
    # Redis redelivers an unacked message (worker killed mid-task) only after this many seconds
    broker_visibility_timeout: int = 4 * 3600
    # beat safety net: pending cases older than this are sent to the workers again
    stale_case_seconds: float = 900.0
    stale_case_check_seconds: float = 300.0

    @model_validator(mode="after")
    def _refuse_embedded_defaults_in_production(self) -> Settings:
        if self.environment == "production":
            needed = ("database_url", "redis_url", "mlflow_tracking_uri", "metrics_token")
            missing = [n for n in needed if not getattr(self, n)]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}; embedded defaults are for development")
        return self

    # derived values: computed on use, never at import
    def section(self, prefix: str, names: Iterable[str]) -> dict[str, Any]:
        """`{name: <prefix + name>}`: how a policy dataclass takes its thresholds from here, their one home."""
        return {name: getattr(self, prefix + name) for name in names}

    @property
    def var_path(self) -> Path:
        return self.var_dir.resolve()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_path / 'skintrouble.db'}"

    @property
    def broker_url(self) -> str:
        return self.redis_url or f"sqla+sqlite:///{self.var_path / 'broker.db'}"

    @property
    def result_backend(self) -> str:
        return self.redis_url or f"db+sqlite:///{self.var_path / 'celery-results.db'}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.var_path / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return (self.var_path / "mlartifacts").as_uri()

    @property
    def cores(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    @property
    def analysis_slots(self) -> int:
        return self.inference_slots or self.cores

    @property
    def threads_per_slot(self) -> int:
        return self.detector_threads or max(1, self.cores // self.analysis_slots)

    @property
    def photos_dir(self) -> Path:
        return self.var_path / "photos"

    @property
    def model_cache_dir(self) -> Path:
        return (self.model_cache or self.var_path / "cache" / "models").resolve()


@lru_cache
def get_settings() -> Settings:
    """Settings are read once per process; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
