"""The promotion gate: a candidate takes `mvp` or `release` only if it beats the holder on a frozen benchmark.

Figures are computed through the serving path (`Detector.predict`) on a benchmark split that is never trained
on, cached per version as MLflow tags, and every alias move is recorded in our own history table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from infra.db.models import AliasEvent
from infra.db.repositories import alias_events, audit
from infra.db.repositories.audit import Actor
from infra.settings import Settings
from pipelines.mlops import benchmark
from pipelines.mlops.registry import ALIASES, Registry


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
    benchmark: str = ""  # the cache key: which benchmark content these figures come from

    def figures(self) -> dict[str, Any]:
        return asdict(self)


def judge(*, registry: Registry, candidate: str, alias: str, settings: Settings) -> GateVerdict:
    """The gate: beat the holder by `promotion_margin` mAP50 without losing more grade accuracy than allowed."""
    holder = registry.alias(alias)
    cand = benchmark.figures(registry, candidate, settings)
    bench = benchmark.cache_key(benchmark.benchmark_dir(settings))
    if holder is None or holder == candidate:
        why = f"no current {alias} to beat" if holder is None else "already holds it"
        return GateVerdict(True, why, cand, None, holder, bench)
    held = benchmark.figures(registry, holder, settings)
    gain = round(cand["mAP50"] - held["mAP50"], 6)  # figures carry 5 decimals: no float dust at the margin
    grade_drop = round(held["grade_accuracy"] - cand["grade_accuracy"], 6)
    if gain < settings.promotion_margin:
        reason = f"mAP50 {cand['mAP50']:.4f} does not beat {held['mAP50']:.4f} by {settings.promotion_margin}"
        return GateVerdict(False, reason, cand, held, holder, bench)
    if grade_drop > settings.promotion_max_grade_drop:
        reason = f"grade accuracy drops {grade_drop:.4f} (allowed {settings.promotion_max_grade_drop})"
        return GateVerdict(False, reason, cand, held, holder, bench)
    return GateVerdict(True, f"mAP50 +{gain:.4f}, grade accuracy {-grade_drop:+.4f}", cand, held, holder, bench)


def move_alias(
    session: Session,
    registry: Registry,
    alias: str,
    version: str,
    *,
    actor: Actor,
    reason: str,
    figures: dict[str, Any],
    action: str = "model.alias_moved",
) -> AliasEvent:
    """Move the alias in MLflow and record the move in its history and the audit trail (the caller's
    transaction commits both), whichever face asked: API, CLI or a training run."""
    previous = registry.alias(alias)
    registry.set_alias(alias, version)
    details: dict[str, Any] = {"reason": reason, "previous_version": previous}
    if figures.get("forced"):
        details["force"] = True
    audit.record(session=session, action=action, actor=actor, target=f"{alias}:{version}", details=details)
    return alias_events.add(
        session=session,
        alias=alias,
        version=version,
        previous_version=previous,
        actor=actor.name,
        reason=reason,
        figures=figures,
    )


def promote(
    *,
    session: Session,
    registry: Registry,
    settings: Settings,
    version: str,
    alias: str,
    actor: Actor,
    reason: str,
    force: bool = False,
) -> AliasEvent:
    """Move `alias` to `version` if the gate passes (poc needs no gate); the verdict is stored on the version."""
    if alias not in ALIASES:
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
        session, registry, alias, version, actor=actor, reason=reason, figures=verdict_figures, action="model.promoted"
    )


def holders(events: list[AliasEvent]) -> list[str]:
    """The stack of holders an alias went through: a move pushes, a rollback pops.

    So two rollbacks in a row walk back two releases instead of undoing each other.
    """
    stack: list[str] = []
    for event in events:
        if "rollback_of" in (event.figures or {}) and len(stack) > 1:
            stack.pop()
        elif not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def rollback(*, session: Session, registry: Registry, alias: str, actor: Actor, reason: str) -> AliasEvent:
    """Move the alias back to the version that held it before the current holder."""
    stack = holders(alias_events.of_alias(session=session, alias=alias))
    current = registry.alias(alias)
    if len(stack) < 2 or stack[-1] != current:
        raise LookupError(f"no earlier holder of {alias!r} to roll back to")
    return move_alias(
        session,
        registry,
        alias,
        stack[-2],
        actor=actor,
        reason=reason,
        figures={"rollback_of": current},
        action="model.rolled_back",
    )


def history(session: Session, limit: int = 200) -> list[AliasEvent]:
    return alias_events.latest(session=session, limit=limit)
