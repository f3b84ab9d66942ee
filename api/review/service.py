"""The dermatologists' review: claim under a lease, read, label, skip, agreement statistics, export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from api import case_access
from api.deps import Principal, UnitOfWork
from api.errors import ApiError
from api.public import as_utc
from api.review.schemas import (
    LabelPublic,
    LabelsIn,
    LabelTypePublic,
    ReviewCasePublic,
    ReviewStatsPublic,
    SuspectPublic,
    SuspectRoutedPublic,
    SuspectsPublic,
    TaxonomyPublic,
)
from detector.heatmap import heatmap_png, objectness_map
from detector.model_card import ModelCard
from infra.db.models import Case, Label, ReviewItem
from infra.db.repositories import audit
from infra.db.repositories import cases as cases_repo
from infra.db.repositories import labels as labels_repo
from infra.db.repositories import review as review_repo
from infra.db.repositories import taxonomy as taxonomy_repo
from pipelines.cases.photos import load_stored_or_none, srgb_jpeg
from pipelines.resources import Resources
from pipelines.review import agreement, label_export, second_look

ADJUDICATED_REVIEWS = 3


def now() -> datetime:
    return datetime.now(UTC)


def photo_url(case_id: str) -> str:
    return f"/v1/review/cases/{case_id}/photo.jpg"


def class_names(resources: Resources) -> list[str]:
    """The served model's classes (read from its card, without loading the model when it is not loaded yet)."""
    if resources.models.loaded:
        return list(resources.models.get().card.class_names)
    return list(ModelCard.load(resources.settings.model_dir).class_names)


def taxonomy(*, uow: UnitOfWork, resources: Resources) -> TaxonomyPublic:
    """The product's lesion taxonomy (what reviewers label with) beside the served model's classes."""
    return TaxonomyPublic(
        labels=[
            LabelTypePublic(name=t.name, display=t.display, category=t.category, model_class=t.model_class)  # type: ignore[arg-type]
            for t in taxonomy_repo.active(session=uow.session)
        ],
        model_classes=class_names(resources),
    )


def _taxonomy_info(uow: UnitOfWork) -> dict[str, dict[str, Any]]:
    return {
        t.name: {"category": t.category, "model_class": t.model_class, "display": t.display}
        for t in taxonomy_repo.active(session=uow.session)
    }


def _audit(uow: UnitOfWork, principal: Principal, action: str, case_id: str, **details: Any) -> None:
    audit.record(
        session=uow.session,
        action=action,
        actor=principal.actor,
        target=case_id,
        details={**details, "person": principal.person_id},
    )


def _case_view(
    *, case: Case, item: ReviewItem, classes: list[str], lease_expires_at: datetime | None
) -> ReviewCasePublic:
    findings = case.findings or []
    extra = sorted({str(f["label"]) for f in findings} - set(classes))
    return ReviewCasePublic(
        id=case.id,
        reason=item.reason,
        priority=item.priority,
        status=item.status,  # type: ignore[arg-type]
        reviews_required=item.reviews_required,
        reviews_done=item.reviews_done,
        photo_url=photo_url(case.id),
        width=case.width,
        height=case.height,
        findings=findings,  # type: ignore[arg-type]
        model_grade=case.grade,
        lesion_count=case.lesion_count,
        model_version=case.model_version,
        classes=classes + extra,
        lease_expires_at=None if lease_expires_at is None else as_utc(lease_expires_at),
    )


def _item_and_case(uow: UnitOfWork, case_id: str) -> tuple[ReviewItem, Case]:
    item = review_repo.get_item(session=uow.session, case_id=case_id)
    case = cases_repo.get(session=uow.session, case_id=case_id)
    if item is None or case is None:
        raise ApiError(404, "review_case_not_found", "No review case with that id.")
    return item, case


def claim(*, uow: UnitOfWork, resources: Resources, principal: Principal) -> ReviewCasePublic | None:
    """Lease the next case for this reviewer; None when nothing is left for them."""
    moment = now()
    expires = moment + timedelta(seconds=resources.settings.review_lease_seconds)
    item = review_repo.claim(session=uow.session, reviewer_id=principal.person_id, now=moment, expires_at=expires)
    if item is None:
        uow.commit()  # releases SQLite's write lock taken by the claim
        return None
    _audit(uow, principal, "review.claimed", item.case_id, lease_expires_at=expires.isoformat())
    item, case = _item_and_case(uow, item.case_id)
    uow.commit()  # once, at the end: the lease and its audit entry are saved together
    return _case_view(case=case, item=item, classes=class_names(resources), lease_expires_at=expires)


def get_case(*, uow: UnitOfWork, resources: Resources, principal: Principal, case_id: str) -> ReviewCasePublic:
    item, case = _item_and_case(uow, case_id)
    lease = review_repo.held_lease(session=uow.session, case_id=case_id, reviewer_id=principal.person_id, now=now())
    view = _case_view(
        case=case, item=item, classes=class_names(resources), lease_expires_at=lease.expires_at if lease else None
    )
    case_access.record_read(uow=uow, principal=principal, case_id=case_id, what="details")
    return view


def photo(*, uow: UnitOfWork, resources: Resources, principal: Principal, case_id: str) -> bytes:
    _, case = _item_and_case(uow, case_id)
    if case.photo_key is None or not resources.store.exists(case.photo_key):
        raise ApiError(404, "photo_not_found", "This case has no stored photo.")
    data = resources.store.get(case.photo_key)
    case_access.record_read(uow=uow, principal=principal, case_id=case_id, what="photo")
    return data


def _require_lease(uow: UnitOfWork, principal: Principal, case_id: str):  # type: ignore[no-untyped-def]
    moment = now()
    lease = review_repo.held_lease(session=uow.session, case_id=case_id, reviewer_id=principal.person_id, now=moment)
    if lease is not None:
        return lease
    own = review_repo.find_lease(session=uow.session, case_id=case_id, reviewer_id=principal.person_id)
    if own is not None and not own.released:
        raise ApiError(409, "lease_expired", "Your lease on this case expired; claim a case again.")
    raise ApiError(409, "lease_not_held", "Only the reviewer holding this case's lease may do that.")


def validate_boxes(labels: LabelsIn, *, width: int, height: int, classes: list[str]) -> None:
    """Boxes must lie inside the photo with positive size and a known class; a grade is needed unless unusable."""
    if labels.verdict != "unusable_photo" and labels.grade is None:
        raise ApiError(422, "grade_required", "Give a grade (0-3) unless the photo is unusable.")
    for n, item in enumerate(labels.boxes):
        x1, y1, x2, y2 = item.box
        if not (x2 > x1 and y2 > y1):
            raise ApiError(422, "box_degenerate", f"Box {n} needs x2 > x1 and y2 > y1.", extra={"box_index": n})
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise ApiError(
                422,
                "box_outside_photo",
                f"Box {n} lies outside the {width}x{height} photo.",
                extra={"box_index": n},
            )
        if item.label not in classes:
            raise ApiError(
                422, "unknown_label", f"Box {n} has an unknown class {item.label!r}.", extra={"classes": classes}
            )


def _as_review(label: Label) -> agreement.Review:
    return agreement.Review(
        case_id=label.case_id,
        reviewer=label.reviewer_id,
        grade=label.grade,
        boxes=tuple((str(b["label"]), tuple(float(v) for v in b["box"])) for b in label.boxes),  # type: ignore[misc]
    )


def submit(
    *, uow: UnitOfWork, resources: Resources, principal: Principal, case_id: str, labels: LabelsIn
) -> LabelPublic:
    """Store the lease holder's labels; a double review that disagrees asks for a third, adjudicating one."""
    item = review_repo.get_item_for_update(session=uow.session, case_id=case_id)
    case = cases_repo.get(session=uow.session, case_id=case_id)
    if item is None or case is None:
        raise ApiError(404, "review_case_not_found", "No review case with that id.")
    lease = _require_lease(uow, principal, case_id)
    classes = _case_view(case=case, item=item, classes=class_names(resources), lease_expires_at=None).classes
    classes = [t.name for t in taxonomy_repo.active(session=uow.session)] + classes
    validate_boxes(labels, width=case.width, height=case.height, classes=classes)
    boxes = [{"label": b.label, "box": [round(v, 2) for v in b.box]} for b in labels.boxes]
    grade = None if labels.verdict == "unusable_photo" else labels.grade
    label = labels_repo.add(
        session=uow.session,
        case_id=case_id,
        reviewer_id=principal.person_id,
        verdict=labels.verdict,
        grade=grade,
        boxes=boxes,
        model_version=case.model_version,
    )
    review_repo.release(session=uow.session, lease=lease)
    given = labels_repo.for_case(session=uow.session, case_id=case_id)
    required, disagreement = item.reviews_required, False
    if item.reviews_required == 2 and len(given) == 2:
        disagreement = agreement.disagree(_as_review(given[0]), _as_review(given[1]))
        if disagreement:
            required = ADJUDICATED_REVIEWS
    review_repo.record_review(session=uow.session, item=item, reviews_required=required, done=len(given) >= required)
    _audit(
        uow,
        principal,
        "review.labelled",
        case_id,
        verdict=labels.verdict,
        grade=grade,
        boxes=len(boxes),
        model_version=case.model_version,
        disagreement=disagreement,
    )
    uow.commit()
    return LabelPublic(
        id=label.id,
        case_id=case_id,
        reviewer_id=principal.person_id,
        verdict=labels.verdict,
        grade=grade,
        boxes=boxes,  # type: ignore[arg-type]
        model_version=label.model_version,
        created_at=as_utc(label.created_at),
        review_status=item.status,  # type: ignore[arg-type]
        reviews_required=item.reviews_required,
        disagreement=disagreement,
    )


def skip(*, uow: UnitOfWork, principal: Principal, case_id: str) -> None:
    """Give the case back to the queue; this reviewer will not be offered it again."""
    _item_and_case(uow, case_id)
    lease = _require_lease(uow, principal, case_id)
    review_repo.release(session=uow.session, lease=lease)
    _audit(uow, principal, "review.skipped", case_id)
    uow.commit()


def model_review(case: Case) -> agreement.Review:
    """The model's answer on a case, as if it were one more reviewer (its findings carry model classes)."""
    return agreement.Review(
        case_id=case.id,
        reviewer="model",
        grade=case.grade,
        boxes=tuple((str(f["label"]), tuple(float(v) for v in f["box"])) for f in case.findings or []),  # type: ignore[misc]
    )


def stats(*, uow: UnitOfWork, resources: Resources) -> ReviewStatsPublic:
    """Queue sizes, label count, inter-reviewer agreement and per-person reliability (vs consensus and model).

    Cases with two or more reviewers (double reviews, second looks at suspects) feed the agreement and the
    consensus; every label also counts against the model's answer on its case."""
    settings = resources.settings
    everything = labels_repo.with_cases(session=uow.session)
    to_model = taxonomy_repo.model_class_map(session=uow.session)
    model = {case.id: model_review(case) for _, case in everything if case.findings is not None}
    report = agreement.agreement_report(
        [_as_review(label) for label, _ in everything],
        model=model,
        to_model=lambda name: to_model.get(name, name),
        min_agreement=settings.review_min_agreement,
        min_cases=settings.review_flag_min_cases,
    )
    return ReviewStatsPublic(
        queue=review_repo.queue_sizes(session=uow.session, now=now()),
        labels=labels_repo.count(session=uow.session),
        agreement=report,
    )


def export(*, uow: UnitOfWork, resources: Resources, principal: Principal, fmt: str) -> tuple[bytes, str, str]:
    """The reviewed labels as (body, media type, file name); every export is audited (who, format, which cases)."""
    samples = labels_repo.reviewed_samples(uow.session)
    audit.record(
        session=uow.session,
        action="review.exported",
        actor=principal.actor,
        target=None,
        details={"format": fmt, "cases": sorted(s.case_id for s in samples), "person": principal.person_id},
    )
    uow.commit()
    info = _taxonomy_info(uow)
    names = label_export.class_names_for(samples, list(info))
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "yolo":
        body = label_export.zip_bytes(
            label_export.yolo_files(samples, names, lambda key: srgb_jpeg(resources.store.get(key)), info)
        )
        return body, "application/zip", f"skintrouble-labels-{stamp}-yolo.zip"
    if fmt == "coco":
        data: Any = label_export.to_coco(samples, names, info)
    else:
        base = resources.settings.public_base_url.rstrip("/")
        data = label_export.to_labelstudio(samples, lambda case_id: base + photo_url(case_id), info)
    return json.dumps(data).encode(), "application/json", f"skintrouble-labels-{stamp}-{fmt}.json"


def _bands(resources: Resources) -> tuple[int, int, int]:
    if resources.models.loaded:
        return resources.models.get().card.grade_bands
    return ModelCard.load(resources.settings.model_dir).grade_bands


def list_suspects(*, uow: UnitOfWork, resources: Resources, limit: int) -> SuspectsPublic:
    """Finished labels ranked for a second look (cases already sent for one are left out)."""
    found = second_look.find(
        session=uow.session, store=resources.store, settings=resources.settings, bands=_bands(resources)
    )
    uow.commit()  # keep the photo hashes computed on the way
    return SuspectsPublic(
        suspects=[SuspectPublic(**s.to_dict()) for s in found.suspects[:limit]], checked=found.checked
    )


_NOT_ROUTABLE = {"not_found": (404, "review_case_not_found")}


def route_suspect(*, uow: UnitOfWork, principal: Principal, case_id: str) -> SuspectRoutedPublic:
    """Send a finished case back to the queue for another reviewer's look, with the reason `suspect_label`."""
    try:
        item = second_look.route(session=uow.session, case_id=case_id)
    except second_look.NotRoutable as exc:
        status, code = _NOT_ROUTABLE.get(exc.code, (409, exc.code))
        raise ApiError(status, code, str(exc)) from exc
    _audit(uow, principal, "review.suspect_routed", case_id, reviews_required=item.reviews_required)
    uow.commit()
    return SuspectRoutedPublic(
        case_id=case_id,
        reason=item.reason,
        reviews_required=item.reviews_required,
        status=item.status,  # type: ignore[arg-type]
    )


def heatmap(*, uow: UnitOfWork, resources: Resources, case_id: str) -> bytes:
    """The served detector's objectness map over the case photo as a transparent PNG; computed on first request
    and cached next to the photo (per model version, so a new release computes its own; deleting the case
    deletes it)."""
    _, case = _item_and_case(uow, case_id)
    if case.photo_key is None or not resources.store.exists(case.photo_key):
        raise ApiError(404, "photo_not_found", "This case has no stored photo.")
    detector = resources.models.get()
    key = f"cases/{case.id}/heatmap-{detector.version}.png"
    if resources.store.exists(key):
        return resources.store.get(key)
    rgb = load_stored_or_none(resources.store.get(case.photo_key))  # in sRGB, as the detector learned
    if rgb is None:
        raise ApiError(404, "photo_not_found", "The stored photo cannot be decoded.")
    body = heatmap_png(objectness_map(detector, rgb), case.width, case.height)
    resources.store.put(key, body, content_type="image/png")
    return body
