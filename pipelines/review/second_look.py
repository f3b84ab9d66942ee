"""Second looks: find suspect labels in the database and send finished cases back for another reviewer.

The scoring is `pipelines.review.suspects` (pure); this module reads the rows, keeps the photos' perceptual hashes, and
re-opens queue rows with the reason `suspect_label`. Callers commit. Used by the review API (list, route one) and
by the beat task that routes the most suspect cases on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from infra.db.models import Case, ReviewItem
from infra.db.repositories import audit
from infra.db.repositories import cases as cases_repo
from infra.db.repositories import labels as labels_repo
from infra.db.repositories import photo_hashes as hashes_repo
from infra.db.repositories import review as review_repo
from infra.db.repositories import taxonomy as taxonomy_repo
from infra.settings import Settings
from infra.storage import PhotoStore
from pipelines.review import suspects

SUSPECT_PRIORITY = 4.0  # above every grade (0-3.99): second looks are few and come first


class NotRoutable(Exception):
    """A case that cannot go for a second look; `code` says why (not_found, already_routed, review_not_finished)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Found:
    suspects: list[suspects.Suspect]
    checked: int


def photo_hashes(*, session: Session, store: PhotoStore, cases: list[Case]) -> dict[str, int]:
    """Perceptual hashes of these cases' photos, computing (and storing) the missing ones."""
    known = hashes_repo.get_many(session=session, case_ids=[c.id for c in cases])
    for case in cases:
        if case.id in known or case.photo_key is None or not store.exists(case.photo_key):
            continue
        rgb = suspects.decode_for_hash(store.get(case.photo_key))
        if rgb is not None:
            known[case.id] = suspects.perceptual_hash(rgb)
            hashes_repo.add(session=session, case_id=case.id, phash=known[case.id])
    return known


def find(*, session: Session, store: PhotoStore, settings: Settings, bands: tuple[int, int, int]) -> Found:
    """Finished labels ranked for a second look; cases that already had one are left out."""
    final = [
        (label, case)
        for label, case, item in labels_repo.final_labels(session=session)
        if suspects.SUSPECT_REASON not in item.reason.split(",") and label.verdict != "unusable_photo"
    ]
    hashes = photo_hashes(session=session, store=store, cases=[case for _, case in final])
    labelled = [
        suspects.LabelledCase(
            case_id=case.id,
            reviewer=label.reviewer_id,
            grade=label.grade,
            boxes=tuple((str(b["label"]), tuple(float(v) for v in b["box"])) for b in label.boxes),  # type: ignore[misc]
            findings=tuple(
                (str(f["label"]), float(f.get("confidence", 1.0)), tuple(float(v) for v in f["box"]))  # type: ignore[misc]
                for f in case.findings or []
            ),
            phash=hashes.get(case.id),
        )
        for label, case in final
    ]
    ranked = suspects.rank_suspects(
        labelled,
        to_model=suspects.as_mapping(taxonomy_repo.model_class_map(session=session)),
        min_confidence=settings.suspect_min_confidence,
        bands=bands,
        duplicate_distance=settings.suspect_duplicate_distance,
    )
    return Found(suspects=ranked, checked=len(labelled))


def route(*, session: Session, case_id: str) -> ReviewItem:
    """Re-open a finished case for one more review by someone else, reason `suspect_label` first."""
    item = review_repo.get_item_for_update(session=session, case_id=case_id)
    if item is None or cases_repo.get(session=session, case_id=case_id) is None:
        raise NotRoutable("not_found", "No review case with that id.")
    if suspects.SUSPECT_REASON in item.reason.split(","):
        raise NotRoutable("already_routed", "This case already had a second look.")
    if item.status != "done":
        raise NotRoutable("review_not_finished", "This case is still in the queue; route it once it is reviewed.")
    review_repo.reopen(session=session, item=item, reason=suspects.SUSPECT_REASON, priority=SUSPECT_PRIORITY)
    return item


def route_most_suspect(
    *, session: Session, store: PhotoStore, settings: Settings, bands: tuple[int, int, int]
) -> list[str]:
    """Route up to `suspect_auto_route_limit` cases scoring at least `suspect_auto_route_min_score`; their ids."""
    found = find(session=session, store=store, settings=settings, bands=bands)
    chosen = [s for s in found.suspects if s.score >= settings.suspect_auto_route_min_score]
    routed = []
    for suspect in chosen[: settings.suspect_auto_route_limit]:
        item = route(session=session, case_id=suspect.case_id)
        audit.record(
            session=session,
            action="review.suspect_routed",
            actor=audit.SYSTEM,
            target=suspect.case_id,
            details={
                "score": round(suspect.score, 4),
                "reasons": suspect.reasons,
                "reviews_required": item.reviews_required,
            },
        )
        routed.append(suspect.case_id)
    return routed
