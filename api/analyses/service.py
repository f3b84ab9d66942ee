"""The mobile app's analyses: create (sync or async), read, overlay, delete."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from api import case_access
from api.analyses.schemas import AnalysisPublic
from api.deps import Principal, UnitOfWork
from api.errors import ApiError
from api.public import as_utc
from detector.findings import Finding
from detector.grading import GRADE_LABELS
from detector.overlay import draw_findings, encode_png
from infra.db.models import Case
from infra.db.repositories import audit
from infra.db.repositories import cases as cases_repo
from pipelines.cases import lifecycle
from pipelines.cases.inference_pool import Busy
from pipelines.cases.lifecycle import overlay_key
from pipelines.cases.photos import load_stored
from pipelines.mlops import erasure
from pipelines.resources import Resources
from pipelines.tasks.app import enqueue_task

log = logging.getLogger(__name__)


def to_public(case: Case) -> AnalysisPublic:
    return AnalysisPublic.model_validate(
        {
            "id": case.id,
            "status": case.status,
            "created_at": as_utc(case.created_at),
            "width": case.width,
            "height": case.height,
            "quality": case.quality,
            "findings": case.findings or [],
            "lesion_count": case.lesion_count,
            "severity": None
            if case.grade is None
            else {"grade": case.grade, "label": GRADE_LABELS[case.grade], **(case.severity_detail or {})},
            "uncertainty": case.uncertainty,
            "model_version": case.model_version,
            "review": {"queued": case.review_queued, "reason": case.review_reason},
        }
    )


def rejection_error(case: Case) -> ApiError:
    quality: dict[str, Any] = case.quality or {}
    return ApiError(
        422,
        "quality_rejected",
        "The photo did not pass the quality check; please retake it.",
        extra={
            "id": case.id,
            "retake_codes": quality.get("retake_codes", []),
            "hints": quality.get("hints", []),
        },
    )


def find_replay(*, uow: UnitOfWork, principal: Principal, idempotency_key: str | None) -> Case | None:
    if not idempotency_key:
        return None
    return cases_repo.find_by_idempotency(
        session=uow.session, api_key_id=principal.key_id, idempotency_key=idempotency_key
    )


def create(
    *,
    uow: UnitOfWork,
    resources: Resources,
    principal: Principal,
    upload: lifecycle.Upload,
    mode: str,
) -> Case:
    """Run the case lifecycle (`pipelines.cases.lifecycle`) and commit; map `Busy` to 503 `busy`."""
    settings = resources.settings
    try:
        if mode == "async":
            case = lifecycle.accept_for_later(resources, upload, wait=settings.intake_wait_seconds)
            return _enqueue(uow=uow, resources=resources, principal=principal, case=case)
        case, outcome = lifecycle.analyse_now(resources, upload, wait=settings.busy_wait_seconds)
    except Busy as exc:
        raise ApiError(
            503,
            "busy",
            "Every analysis slot is taken; retry shortly or use asynchronous mode.",
            extra={"retry_after": exc.retry_after},
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc

    def save() -> None:
        cases_repo.add(session=uow.session, case=case)
        lifecycle.record(uow=uow, resources=resources, case=case, outcome=outcome)

    return _save_or_replay(uow=uow, resources=resources, case=case, principal=principal, save=save)


def _enqueue(*, uow: UnitOfWork, resources: Resources, principal: Principal, case: Case) -> Case:
    """Save the pending case and send it to a worker after the commit; a dead broker un-accepts it (503)."""
    case_id = case.id

    def save() -> None:
        cases_repo.add(session=uow.session, case=case)
        uow.after_commit(lambda: enqueue_task("analysis.analyze_case", case_id))

    try:
        return _save_or_replay(uow=uow, resources=resources, case=case, principal=principal, save=save)
    except ApiError:
        raise
    except Exception as exc:  # broker down: the case was never accepted, so remove it and say so
        log.error("could not enqueue analysis: %s", type(exc).__name__)
        _discard(uow=uow, resources=resources, case_id=case_id)
        raise ApiError(
            503,
            "queue_unavailable",
            "Asynchronous analysis is unavailable; retry later or use synchronous mode.",
            headers={"Retry-After": "10"},
        ) from exc


def _save_or_replay(
    *, uow: UnitOfWork, resources: Resources, case: Case, principal: Principal, save: Callable[[], None]
) -> Case:
    """Insert and commit. A concurrent retry with the same Idempotency-Key may have inserted first: the unique
    constraint fires at the insert's flush (or at commit), so both sit inside the guard; the loser's photo goes
    and it answers with the winner's case."""
    try:
        save()
        uow.commit()
    except IntegrityError:
        uow.rollback()
        resources.store.delete_prefix(f"cases/{case.id}")
        first = find_replay(uow=uow, principal=principal, idempotency_key=case.idempotency_key)
        if first is None:
            raise
        return first
    return case


def _discard(*, uow: UnitOfWork, resources: Resources, case_id: str) -> None:
    stored = cases_repo.get(session=uow.session, case_id=case_id)
    if stored is not None:
        uow.session.delete(stored)
        uow.commit()
    resources.store.delete_prefix(f"cases/{case_id}")


def get_visible(*, uow: UnitOfWork, principal: Principal, case_id: str) -> Case:
    """Apps see their own cases; dermatologists those in review (api.case_access). Else 404 (no existence leak)."""
    case = cases_repo.get(session=uow.session, case_id=case_id)
    if case is None or not case_access.visible_to(session=uow.session, principal=principal, case=case):
        raise ApiError(404, "analysis_not_found", "No analysis with that id.")
    return case


def overlay_png(*, resources: Resources, case: Case) -> bytes:
    if case.photo_key is None or not resources.store.exists(case.photo_key):
        raise ApiError(404, "photo_not_found", "This analysis has no stored photo.")
    if case.status != "done":
        raise ApiError(409, "analysis_not_done", "The analysis is not finished yet.")
    key = overlay_key(case.id)
    if resources.store.exists(key):
        return resources.store.get(key)
    findings = [Finding.from_dict(f) for f in case.findings or []]
    png = encode_png(draw_findings(load_stored(resources.store.get(case.photo_key)), findings))
    resources.store.put(key, png, content_type="image/png")
    return png


def delete(*, uow: UnitOfWork, resources: Resources, principal: Principal, case: Case) -> None:
    """Remove the photo and everything derived from it; leave a tombstone so snapshots exclude the case."""
    case_id = case.id
    erasure.revoke_for_case(session=uow.session, settings=resources.settings, case_id=case_id)  # snapshots with it
    cases_repo.delete_case(session=uow.session, case=case)
    audit.record(session=uow.session, action="analysis.deleted", actor=principal.actor, target=case_id)
    uow.after_commit(lambda: resources.store.delete_prefix(f"cases/{case_id}"))
    uow.after_commit(erasure.request_purge)  # their copies and MLflow artefacts, on the training machine
    uow.commit()
