"""One case lifecycle for every entry point: sanitise, store, gate, detect, route, record.

The API's synchronous route, its asynchronous route and the Celery task all come through here, in the same
order and on the same bytes: what is analysed is always the stored, sanitised JPEG, so the same upload gets
the same findings whichever way it came in. The API only maps the outcome (or `Busy`, `PhotoError`) to HTTP.
Nothing here commits: the caller's unit of work does, and work meant for after the commit (sending the
task, deleting a rejected photo) is handed to its `after_commit`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from infra.db.models import Case, new_id
from infra.db.repositories import cases as cases_repo
from infra.db.unit_of_work import UnitOfWork, unit_of_work
from pipelines.cases.analysis import AnalysisOutcome, analyze_jpeg, record_outcome, thresholds_from
from pipelines.cases.photos import Photo, decode_photo
from pipelines.cases.routing import RoutingPolicy
from pipelines.resources import Resources

log = logging.getLogger(__name__)


def photo_key(case_id: str) -> str:
    return f"cases/{case_id}/photo.jpg"


def overlay_key(case_id: str) -> str:
    return f"cases/{case_id}/overlay.png"


def sanitise(resources: Resources, data: bytes) -> Photo:
    """Validate the upload and make the copy we store (raises `PhotoError`)."""
    return decode_photo(data, max_pixels=resources.settings.max_image_pixels)


@dataclass(frozen=True)
class Upload:
    """What one upload request brings: the bytes, who sent them, and its Idempotency-Key with the request's
    fingerprint (photo digest and mode) that the key is bound to."""

    data: bytes
    owner_key_id: str
    idempotency_key: str | None = None
    fingerprint: str | None = None


def new_case(upload: Upload, photo: Photo) -> Case:
    """A pending case for a sanitised upload."""
    return Case(
        id=new_id(),
        status="pending",
        api_key_id=upload.owner_key_id,
        idempotency_key=upload.idempotency_key,
        request_fingerprint=upload.fingerprint if upload.idempotency_key else None,
        width=photo.width,
        height=photo.height,
    )


def analyse(resources: Resources, *, case: Case, jpeg: bytes) -> AnalysisOutcome:
    """Gate, detect and route the stored bytes of a case (the caller holds an inference slot)."""
    settings = resources.settings
    return analyze_jpeg(
        jpeg,
        photo_size=(int(case.width or 0), int(case.height or 0)),
        case_id=case.id,
        detector=resources.models.get(),
        thresholds=thresholds_from(settings),
        policy=RoutingPolicy.from_settings(settings),
        embedding_check=settings.embedding_ood_check,
    )


def analyse_now(resources: Resources, upload: Upload, *, wait: float | None) -> tuple[Case, AnalysisOutcome]:
    """Synchronous analysis inside one inference slot: sanitise, analyse, store the photo if accepted.

    The case comes back with its id and photo but not yet in a session; the caller adds it, then `record`s the
    outcome.
    """
    with resources.pool.slot(wait):
        photo = sanitise(resources, upload.data)
        case = new_case(upload, photo)
        outcome = analyse(resources, case=case, jpeg=photo.jpeg)
    if not outcome.rejected:
        case.photo_key = photo_key(case.id)
        resources.store.put(case.photo_key, photo.jpeg)
    return case, outcome


def accept_for_later(resources: Resources, upload: Upload, *, wait: float | None) -> Case:
    """Asynchronous intake: sanitise and store the photo, return a pending case (unsaved) for the worker."""
    with resources.pool.slot(wait):
        photo = sanitise(resources, upload.data)
    case = new_case(upload, photo)
    case.photo_key = photo_key(case.id)
    resources.store.put(case.photo_key, photo.jpeg)
    return case


def record(*, uow: UnitOfWork, resources: Resources, case: Case, outcome: AnalysisOutcome) -> None:
    """Write the outcome onto the case (queueing it for review when routing says so); a rejected photo is
    deleted once the commit has made the rejection durable."""
    record_outcome(session=uow.session, case=case, outcome=outcome)
    if outcome.rejected and case.photo_key is not None:
        stored, case.photo_key = case.photo_key, None
        uow.after_commit(lambda: resources.store.delete(stored))


def complete_pending_case(case_id: str, resources: Resources) -> str:
    """The worker's side: analyse a pending case; idempotent (a finished or deleted case is left alone)."""
    with unit_of_work(resources.settings.sqlalchemy_url) as uow:
        session = uow.session
        # the row lock makes a redelivery that races the first delivery wait, then find the case done
        case = cases_repo.get_for_update(session=session, case_id=case_id)
        if case is None:
            log.info("case %s no longer exists (deleted); nothing to do", case_id)
            return "missing"
        if case.status != "pending":
            return case.status
        if case.photo_key is None:
            raise RuntimeError(f"pending case {case_id} has no stored photo")
        with resources.pool.slot(None):
            outcome = analyse(resources, case=case, jpeg=resources.store.get(case.photo_key))
        record(uow=uow, resources=resources, case=case, outcome=outcome)
        log.info("case %s analysed: %s", case.id, case.status)  # bench/chaos_soak.py counts analyses by this line
        return case.status
