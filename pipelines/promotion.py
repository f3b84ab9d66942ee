"""The promotion gate: a candidate takes `mvp` or `release` only if it beats the holder on a frozen benchmark.

Figures are computed through the serving path (`Detector.predict`) on a benchmark split that is never trained
on, cached per version as MLflow tags, and every alias move is recorded in our own history table.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.evaluation import evaluate, load_labelled_images
from detector.onnx_runtime import Detector
from detector.synthetic import write_yolo_dataset
from infra.db.models import AliasEvent
from infra.settings import Settings
from pipelines.model_registry import Registry

PROMOTABLE = ("poc", "mvp", "release")


class PromotionRefused(Exception):
    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    candidate: dict[str, float]
    holder: dict[str, float] | None
    holder_version: str | None

    def figures(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "candidate": self.candidate,
            "holder": self.holder,
            "holder_version": self.holder_version,
        }


SMOKE_BENCHMARK_SEEDS = range(10_000, 10_008)


def benchmark_dir(settings: Settings) -> Path:
    """The frozen benchmark: SKINTROUBLE_BENCHMARK_DIR (a YOLO folder never trained on, e.g. a held-out split of
    real photos) in production; on embedded defaults a fixed set of synthetic photos, generated once."""
    if settings.benchmark_dir is not None:
        if not settings.benchmark_dir.is_dir():
            raise FileNotFoundError(f"benchmark folder {settings.benchmark_dir} does not exist")
        return settings.benchmark_dir
    folder = settings.var_path / "benchmark-synthetic"
    if not (folder / "labels").is_dir():
        tmp = folder.with_name(".benchmark-synthetic.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        write_yolo_dataset(tmp, SMOKE_BENCHMARK_SEEDS)
        tmp.rename(folder)
    return folder


def benchmark_figures(registry: Registry, version: str, settings: Settings) -> dict[str, float]:
    """mAP50 and grade accuracy of a version on the frozen benchmark, computed once per (version, benchmark)."""
    bench = benchmark_dir(settings)
    key = f"benchmark.{bench.name}"[:250]
    cached = registry.version(version).tags.get(key)
    if cached:
        return json.loads(cached)
    model_dir = registry.download(version, settings.model_cache_dir)
    detector = Detector.load(model_dir, settings.model_cache_dir, threads=settings.detector_threads)
    images, _ = load_labelled_images(bench, None)
    result = evaluate(
        detector,
        images,
        class_names=detector.card.class_names,
        operating_conf=detector.card.operating_conf,
        served_counts=True,
    )
    figures = {
        "mAP50": round(float(result.summary.get("mAP50", 0.0)), 5),
        "grade_accuracy": round(float(result.summary.get("grade_accuracy", 0.0)), 5),
        "images": float(result.summary["images"]),
    }
    registry.tag(version, key, json.dumps(figures))
    return figures


def judge(*, registry: Registry, candidate: str, alias: str, settings: Settings) -> GateVerdict:
    holder = registry.alias(alias)
    cand = benchmark_figures(registry, candidate, settings)
    if holder is None or holder == candidate:
        return GateVerdict(
            True, f"no current {alias} to beat" if holder is None else "already holds it", cand, None, holder
        )
    held = benchmark_figures(registry, holder, settings)
    gain = cand["mAP50"] - held["mAP50"]
    grade_drop = held["grade_accuracy"] - cand["grade_accuracy"]
    if gain < settings.promotion_margin:
        reason = f"mAP50 {cand['mAP50']:.4f} does not beat {held['mAP50']:.4f} by {settings.promotion_margin}"
        return GateVerdict(False, reason, cand, held, holder)
    if grade_drop > settings.promotion_max_grade_drop:
        reason = f"grade accuracy drops {grade_drop:.4f} (allowed {settings.promotion_max_grade_drop})"
        return GateVerdict(False, reason, cand, held, holder)
    return GateVerdict(True, f"mAP50 +{gain:.4f}, grade accuracy {-grade_drop:+.4f}", cand, held, holder)


def move_alias(
    *,
    session: Session,
    registry: Registry,
    alias: str,
    version: str,
    actor: str,
    reason: str,
    figures: dict[str, Any],
) -> AliasEvent:
    previous = registry.alias(alias)
    registry.set_alias(alias, version)
    event = AliasEvent(
        alias=alias, version=version, previous_version=previous, actor=actor, reason=reason, figures=figures
    )
    session.add(event)
    session.flush()
    return event


def promote(
    *,
    session: Session,
    registry: Registry,
    settings: Settings,
    version: str,
    alias: str,
    actor: str,
    reason: str,
    force: bool = False,
) -> AliasEvent:
    """Move `alias` to `version` if the gate passes (poc needs no gate); the verdict is stored on the version."""
    if alias not in PROMOTABLE:
        raise ValueError(f"unknown alias {alias!r}")
    registry.version(version)  # raises if the version does not exist
    if alias == "poc":
        verdict_figures: dict[str, Any] = {"gate": "none for poc"}
    else:
        verdict = judge(registry=registry, candidate=version, alias=alias, settings=settings)
        verdict_figures = verdict.figures()
        registry.tag(version, f"gate.{alias}", json.dumps(verdict_figures))
        if not verdict.passed and not force:
            raise PromotionRefused(verdict.reason, verdict_figures)
        if not verdict.passed:
            verdict_figures["forced"] = True
    return move_alias(
        session=session,
        registry=registry,
        alias=alias,
        version=version,
        actor=actor,
        reason=reason,
        figures=verdict_figures,
    )


def rollback(*, session: Session, registry: Registry, alias: str, actor: str, reason: str) -> AliasEvent:
    """Move the alias back to the version that held it before the last move."""
    last = session.scalar(select(AliasEvent).where(AliasEvent.alias == alias).order_by(AliasEvent.id.desc()).limit(1))
    if last is None or last.previous_version is None:
        raise LookupError(f"no earlier holder of {alias!r} to roll back to")
    return move_alias(
        session=session,
        registry=registry,
        alias=alias,
        version=last.previous_version,
        actor=actor,
        reason=reason,
        figures={"rollback_of": last.version},
    )


def history(session: Session, limit: int = 200) -> list[AliasEvent]:
    return list(session.scalars(select(AliasEvent).order_by(AliasEvent.id.desc()).limit(limit)))
